// ref: fused scaled dot-product attention, forward and backward, as plain loops in double: the
// specification the cpu and cuda kernels are held to. The backward recomputes each row's probabilities
// exactly (it does not rely on the stored lse), one query row at a time.
#include "core/kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/backend/ref/ref_backend.h"
#include "core/backend/strided.h"

namespace moelab {

namespace {

struct AttnSizes {
  int64_t B, H, Tq, Tk, D, Dv;
};
AttnSizes sizes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
}

// The scores of query i against every key (double) and which keys it sees; returns the number seen.
template <typename T>
int64_t score_row(const HeadView<T>& q, const HeadView<T>& k, const AttnSizes& n, int64_t b, int64_t h,
                  int64_t i, const int32_t* valid, bool causal, double scale, std::vector<double>& s,
                  std::vector<char>& seen) {
  const T* qi = q.row(b, h, i);
  int64_t count = 0;
  for (int64_t j = 0; j < n.Tk; ++j) {
    seen[j] = kern::attention_sees(i, j, n.Tq, n.Tk, causal, valid);
    if (!seen[j]) continue;
    const T* kj = k.row(b, h, j);
    double dot = 0;
    for (int64_t d = 0; d < n.D; ++d) dot += double(qi[d]) * double(kj[d]);
    s[j] = scale * dot;
    ++count;
  }
  return count;
}

// Turns the seen scores into probabilities in place (unseen -> 0); returns log(sum exp(s)).
double probabilities(int64_t tk, std::vector<double>& s, const std::vector<char>& seen) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < tk; ++j)
    if (seen[j]) mx = std::max(mx, s[j]);
  double sum = 0;
  for (int64_t j = 0; j < tk; ++j) sum += seen[j] ? std::exp(s[j] - mx) : 0.0;
  for (int64_t j = 0; j < tk; ++j) s[j] = seen[j] ? std::exp(s[j] - mx) / sum : 0.0;
  return mx + std::log(sum);
}

}  // namespace

void RefBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid,
                                   bool causal, double scale, Tensor& out, Tensor& lse) {
  AttnSizes n = sizes_of(q, k, v);
  dispatch_float(q.dtype(), "attention_forward", [&]<typename T>() {
    HeadView<T> qv(q), kv(k), vv(v);
    T *po = out.data<T>(), *pl = lse.data<T>();
    std::vector<double> p(static_cast<size_t>(n.Tk)), acc(static_cast<size_t>(n.Dv));
    std::vector<char> seen(static_cast<size_t>(n.Tk));
    for (int64_t b = 0; b < n.B; ++b) {
      const int32_t* valid = key_valid.defined() ? key_valid.data<int32_t>() + b * n.Tk : nullptr;
      for (int64_t h = 0; h < n.H; ++h)
        for (int64_t i = 0; i < n.Tq; ++i) {
          int64_t row = (b * n.H + h) * n.Tq + i;
          T* oi = po + row * n.Dv;
          if (score_row(qv, kv, n, b, h, i, valid, causal, scale, p, seen) == 0) {
            for (int64_t d = 0; d < n.Dv; ++d) oi[d] = T(0);
            pl[row] = -std::numeric_limits<T>::infinity();
            continue;
          }
          pl[row] = static_cast<T>(probabilities(n.Tk, p, seen));
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t j = 0; j < n.Tk; ++j) {
            if (!seen[j]) continue;
            const T* vj = vv.row(b, h, j);
            for (int64_t d = 0; d < n.Dv; ++d) acc[d] += p[j] * double(vj[d]);
          }
          for (int64_t d = 0; d < n.Dv; ++d) oi[d] = static_cast<T>(acc[d]);
        }
    }
  });
}

// With p = softmax(s) over the seen keys and dp_j = gout_i . v_j: ds_j = p_j (dp_j - sum_k p_k dp_k),
// gq_i = scale sum_j ds_j k_j, gk_j += scale ds_j q_i, gv_j += p_j gout_i.
void RefBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_valid, bool causal, double scale, const Tensor& /*out*/,
                                    const Tensor& /*lse*/, const Tensor& gout, Tensor& gq, Tensor& gk,
                                    Tensor& gv) {
  AttnSizes n = sizes_of(q, k, v);
  dispatch_float(q.dtype(), "attention_backward", [&]<typename T>() {
    HeadView<T> qv(q), kv(k), vv(v), gov(gout);
    std::vector<double> p(static_cast<size_t>(n.Tk)), dp(static_cast<size_t>(n.Tk));
    std::vector<double> gk_acc(static_cast<size_t>(n.Tk * n.D)), gv_acc(static_cast<size_t>(n.Tk * n.Dv)),
        gq_acc(static_cast<size_t>(n.D));
    std::vector<char> seen(static_cast<size_t>(n.Tk));
    for (int64_t b = 0; b < n.B; ++b) {
      const int32_t* valid = key_valid.defined() ? key_valid.data<int32_t>() + b * n.Tk : nullptr;
      for (int64_t h = 0; h < n.H; ++h) {
        int64_t head = b * n.H + h;
        std::fill(gk_acc.begin(), gk_acc.end(), 0.0);
        std::fill(gv_acc.begin(), gv_acc.end(), 0.0);
        for (int64_t i = 0; i < n.Tq; ++i) {
          std::fill(gq_acc.begin(), gq_acc.end(), 0.0);
          const T *qi = qv.row(b, h, i), *goi = gov.row(b, h, i);
          if (score_row(qv, kv, n, b, h, i, valid, causal, scale, p, seen) > 0) {
            probabilities(n.Tk, p, seen);
            double delta = 0;
            for (int64_t j = 0; j < n.Tk; ++j) {
              if (!seen[j]) continue;
              const T* vj = vv.row(b, h, j);
              double dot = 0;
              for (int64_t d = 0; d < n.Dv; ++d) dot += double(goi[d]) * double(vj[d]);
              dp[j] = dot;
              delta += p[j] * dot;
            }
            for (int64_t j = 0; j < n.Tk; ++j) {
              if (!seen[j]) continue;
              double ds = p[j] * (dp[j] - delta) * scale;
              const T* kj = kv.row(b, h, j);
              for (int64_t d = 0; d < n.D; ++d) {
                gq_acc[d] += ds * double(kj[d]);
                gk_acc[j * n.D + d] += ds * double(qi[d]);
              }
              for (int64_t d = 0; d < n.Dv; ++d) gv_acc[j * n.Dv + d] += p[j] * double(goi[d]);
            }
          }
          T* gqi = gq.data<T>() + (head * n.Tq + i) * n.D;
          for (int64_t d = 0; d < n.D; ++d) gqi[d] = static_cast<T>(gq_acc[d]);
        }
        T* gkh = gk.data<T>() + head * n.Tk * n.D;
        T* gvh = gv.data<T>() + head * n.Tk * n.Dv;
        for (int64_t e = 0; e < n.Tk * n.D; ++e) gkh[e] = static_cast<T>(gk_acc[e]);
        for (int64_t e = 0; e < n.Tk * n.Dv; ++e) gvh[e] = static_cast<T>(gv_acc[e]);
      }
    }
  });
}

}  // namespace moelab
