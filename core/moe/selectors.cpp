// Host-side expert selection: top-k, expert choice, Sinkhorn balancing, hash and random routing.
#include "core/moe/selectors.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/util/check.h"
#include "core/util/philox.h"

namespace moelab::moe {

std::vector<int64_t> select_top_k(const std::vector<double>& scores, int64_t T, int64_t E, int64_t k) {
  MOELAB_CHECK(static_cast<int64_t>(scores.size()) == T * E && k >= 1 && k <= E,
               "select_top_k: " << scores.size() << " scores for T = " << T << ", E = " << E << ", k = " << k);
  std::vector<int64_t> out(static_cast<size_t>(T * k));
#pragma omp parallel for schedule(static) if (T * E > 65536)
  for (int64_t t = 0; t < T; ++t) {
    const double* row = scores.data() + t * E;
    int64_t* o = out.data() + t * k;
    // Insertion into a sorted list of k (k is small); strict > keeps the lower index on ties.
    int64_t n = 0;
    for (int64_t e = 0; e < E; ++e) {
      double v = row[e];
      if (n == k && !(v > row[o[k - 1]])) continue;
      int64_t pos = n < k ? n++ : k - 1;
      while (pos > 0 && v > row[o[pos - 1]]) {
        o[pos] = o[pos - 1];
        --pos;
      }
      o[pos] = e;
    }
  }
  return out;
}

void select_expert_choice(const std::vector<double>& probs, int64_t T, int64_t E, int64_t capacity,
                          std::vector<int64_t>& slot_expert, std::vector<int64_t>& token_offsets) {
  MOELAB_CHECK(capacity >= 0 && capacity <= T, "select_expert_choice: capacity " << capacity << " for " << T
                                                                                 << " tokens");
  // chosen[t * E + e]: expert e picked token t.
  std::vector<uint8_t> chosen(static_cast<size_t>(T * E), 0);
#pragma omp parallel for schedule(static) if (T * E > 65536)
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int64_t> idx(static_cast<size_t>(T));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + capacity, idx.end(), [&](int64_t a, int64_t b) {
      double pa = probs[a * E + e], pb = probs[b * E + e];
      return pa > pb || (pa == pb && a < b);
    });
    for (int64_t i = 0; i < capacity; ++i) chosen[idx[i] * E + e] = 1;
  }
  slot_expert.clear();
  token_offsets.assign(static_cast<size_t>(T + 1), 0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e)
      if (chosen[t * E + e]) slot_expert.push_back(e);
    token_offsets[t + 1] = static_cast<int64_t>(slot_expert.size());
  }
}

std::vector<double> sinkhorn_balance(const std::vector<double>& logits, int64_t T, int64_t E, int64_t iterations) {
  std::vector<double> m(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t) {
    const double* z = logits.data() + t * E;
    double mx = *std::max_element(z, z + E);
    for (int64_t e = 0; e < E; ++e) m[t * E + e] = std::exp(z[e] - mx);
  }
  double col_target = static_cast<double>(T) / static_cast<double>(E);
  std::vector<double> col(static_cast<size_t>(E));
  for (int64_t it = 0; it < iterations; ++it) {
    std::fill(col.begin(), col.end(), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) col[e] += m[t * E + e];
    for (int64_t e = 0; e < E; ++e) col[e] = col[e] > 0 ? col_target / col[e] : 0.0;
    for (int64_t t = 0; t < T; ++t) {
      double row = 0;
      for (int64_t e = 0; e < E; ++e) row += (m[t * E + e] *= col[e]);
      double inv = row > 0 ? 1.0 / row : 0.0;
      for (int64_t e = 0; e < E; ++e) m[t * E + e] *= inv;
    }
  }
  return m;
}

std::vector<int64_t> select_hash(const std::vector<int64_t>& ids, int64_t E, int64_t k) {
  std::vector<int64_t> out(ids.size() * static_cast<size_t>(k));
  for (size_t t = 0; t < ids.size(); ++t) {
    // splitmix64 finalizer: a fixed, well-mixed hash of the id.
    uint64_t z = static_cast<uint64_t>(ids[t]) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    int64_t h = static_cast<int64_t>(z % static_cast<uint64_t>(E));
    for (int64_t j = 0; j < k; ++j) out[t * k + j] = (h + j) % E;
  }
  return out;
}

std::vector<int64_t> select_random(int64_t T, int64_t E, int64_t k, uint64_t key, uint64_t offset) {
  std::vector<int64_t> out(static_cast<size_t>(T * k));
  std::vector<int64_t> perm(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    // Partial Fisher-Yates: k distinct experts.
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t j = 0; j < k; ++j) {
      double u = philox::uniform_at(key, offset + static_cast<uint64_t>(t * k + j));
      int64_t r = j + std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(E - j)), E - j - 1);
      std::swap(perm[j], perm[r]);
      out[t * k + j] = perm[j];
    }
  }
  return out;
}

}  // namespace moelab::moe
