// cpu: MoE routing plan (histogram, scan, stable counting sort, capacity), row gather/scatter, combine and
// the grouped expert FFN: OpenBLAS GEMMs per non-empty expert, cut into fixed tiles (row blocks, and column
// blocks of the weight gradients) that run in parallel with single-threaded BLAS inside. Every output
// element is computed by one tile in a fixed order: results do not depend on the thread count.
#include <cblas.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"
#include "core/kernels/fast_math.h"

namespace moelab {

using cpu::parallel_for;

namespace {

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, const T* b, int64_t ldb,
          T beta, T* c, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// Rows per parallel chunk for the memory-bound row copies of width w (about 256K elements, 1 MiB of f32,
// per chunk): a copy smaller than that takes less time on one thread than waking a second one (small
// experts: T 1024 x d 128 stays on one thread). Rows are independent, so the chunking changes no value.
int64_t rows_grain(int64_t w) { return std::max<int64_t>(1, 262144 / std::max<int64_t>(w, 1)); }

// The grouped FFN runs as tiles whose boundaries depend only on the shapes: row blocks of an expert's
// segment (forward, and the backward's row-wise part) and column blocks of an expert's weight gradient.
// Each tile is one single-threaded GEMM chain, tiles run in parallel, so results do not depend on the
// number of threads (threaded BLAS would split its reductions differently).
constexpr int64_t kRowTile = 256, kColTile = 256;

struct Tile {
  int64_t e, begin, end;  // expert; rows [begin, end) or columns [begin, end)
};

// Row tiles of every non-empty expert, largest experts first (better load balance).
std::vector<Tile> row_tiles(const int64_t* off, int64_t E) {
  std::vector<int64_t> order;
  for (int64_t e = 0; e < E; ++e)
    if (off[e + 1] > off[e]) order.push_back(e);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return off[a + 1] - off[a] > off[b + 1] - off[b]; });
  std::vector<Tile> tiles;
  for (int64_t e : order)
    for (int64_t r = off[e]; r < off[e + 1]; r += kRowTile) tiles.push_back({e, r, std::min(off[e + 1], r + kRowTile)});
  return tiles;
}

// Column tiles [0, width) of every expert with more than one row tile (an expert that fits in one row
// tile gets its weight gradients in that tile's task, while its rows are still in cache).
std::vector<Tile> column_tiles(const int64_t* off, int64_t E, int64_t width) {
  std::vector<Tile> tiles;
  for (int64_t e = 0; e < E; ++e)
    if (off[e + 1] - off[e] > kRowTile)
      for (int64_t c = 0; c < width; c += kColTile) tiles.push_back({e, c, std::min(width, c + kColTile)});
  return tiles;
}

// Runs body(tile) for every tile. With more than one thread available this is always a parallel region,
// even for one tile: OpenBLAS called outside a region would thread (and round) differently.
template <typename F> void for_each_tile(const std::vector<Tile>& tiles, F&& body) {
  int64_t n = static_cast<int64_t>(tiles.size());
  if (n > 0 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) body(tiles[i]);
  } else {
    for (const Tile& t : tiles) body(t);
  }
}

// Column sums of rows (n, w) with leading dimension ld into out (w), rows added in order.
template <typename T> void column_sum(const T* rows, int64_t n, int64_t w, int64_t ld, T* out) {
  std::fill(out, out + w, T(0));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) out[j] += rows[r * ld + j];
}

template <typename T> T dot(const T* a, const T* b, int64_t n) {
  // Eight fixed lanes: vectorizable and the same summation order every time.
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  T tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

}  // namespace

void CpuBackend::moe_plan(const Tensor& slot_expert, const Tensor& slot_priority, int64_t E, int64_t capacity,
                          Tensor& expert_counts, Tensor& expert_offsets, Tensor& row_slot, Tensor& slot_row) {
  int64_t S = slot_expert.numel();
  const int64_t* se = slot_expert.data<int64_t>();
  int64_t *counts = expert_counts.data<int64_t>(), *offsets = expert_offsets.data<int64_t>();
  int64_t *rs = row_slot.data<int64_t>(), *sr = slot_row.data<int64_t>();
  // Histogram and exclusive scan.
  std::fill(counts, counts + E, int64_t(0));
  for (int64_t s = 0; s < S; ++s) {
    int64_t e = se[s];
    MOELAB_CHECK(e >= -1 && e < E, "moe_plan: slot " << s << " names expert " << e << " of " << E);
    if (e >= 0) ++counts[e];
  }
  std::vector<int64_t> start(static_cast<size_t>(E + 1), 0), fill(static_cast<size_t>(E), 0);
  for (int64_t e = 0; e < E; ++e) start[e + 1] = start[e] + counts[e];
  // Stable counting sort: each expert's slots in slot order.
  std::vector<int64_t> sorted(static_cast<size_t>(start[E]));
  for (int64_t s = 0; s < S; ++s)
    if (se[s] >= 0) sorted[start[se[s]] + fill[se[s]]++] = s;
  offsets[0] = 0;
  for (int64_t e = 0; e < E; ++e) {
    int64_t kept = capacity >= 0 ? std::min(counts[e], capacity) : counts[e];
    offsets[e + 1] = offsets[e] + kept;
  }
  std::fill(sr, sr + S, int64_t(-1));
  std::fill(rs, rs + S, int64_t(-1));
  for (int64_t e = 0; e < E; ++e) {
    int64_t* seg = sorted.data() + start[e];
    int64_t n = counts[e], kept = offsets[e + 1] - offsets[e];
    if (kept < n && slot_priority.defined()) {
      // Keep the `kept` highest-priority slots (ties -> lower slot), then restore slot order.
      dispatch_dtype(slot_priority.dtype(), [&]<typename T>() {
        if constexpr (std::is_floating_point_v<T>) {
          const T* pr = slot_priority.data<T>();
          std::stable_sort(seg, seg + n, [&](int64_t a, int64_t b) { return pr[a] > pr[b]; });
        } else {
          MOELAB_FAIL("moe_plan: slot_priority must be a float tensor");
        }
      });
      std::sort(seg, seg + kept);
    }
    for (int64_t i = 0; i < kept; ++i) {
      rs[offsets[e] + i] = seg[i];
      sr[seg[i]] = offsets[e] + i;
    }
  }
}

void CpuBackend::moe_gather_rows(const Tensor& x, const Tensor& slot_row, const Tensor& token_offsets,
                                 Tensor& x_rows) {
  int64_t T = x.size(0), d = x.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(x.dtype(), [&]<typename T_>() {
    const T_* px = x.data<T_>();
    T_* po = x_rows.data<T_>();
    parallel_for(T, rows_grain(d), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        for (int64_t s = to[t]; s < to[t + 1]; ++s)
          if (sr[s] >= 0) std::copy(px + t * d, px + (t + 1) * d, po + sr[s] * d);
    });
  });
}

void CpuBackend::moe_scatter_rows(const Tensor& g_rows, const Tensor& slot_row, const Tensor& token_offsets,
                                  Tensor& gx) {
  int64_t T = gx.size(0), d = gx.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(gx.dtype(), [&]<typename T_>() {
    const T_* pg = g_rows.data<T_>();
    T_* po = gx.data<T_>();
    parallel_for(T, rows_grain(d), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        T_* o = po + t * d;
        std::fill(o, o + d, T_(0));
        for (int64_t s = to[t]; s < to[t + 1]; ++s) {
          if (sr[s] < 0) continue;
          const T_* g = pg + sr[s] * d;
          for (int64_t j = 0; j < d; ++j) o[j] += g[j];
        }
      }
    });
  });
}

void CpuBackend::moe_combine(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                             const Tensor& token_offsets, Tensor& out) {
  int64_t T = out.size(0), d = out.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(out.dtype(), [&]<typename T_>() {
    const T_ *py = y_rows.data<T_>(), *pw = slot_weight.data<T_>();
    T_* po = out.data<T_>();
    parallel_for(T, rows_grain(d), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        T_* o = po + t * d;
        std::fill(o, o + d, T_(0));
        for (int64_t s = to[t]; s < to[t + 1]; ++s) {
          if (sr[s] < 0) continue;
          const T_* y = py + sr[s] * d;
          T_ w = pw[s];
          for (int64_t j = 0; j < d; ++j) o[j] += w * y[j];
        }
      }
    });
  });
}

void CpuBackend::moe_combine_backward(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                                      const Tensor& token_offsets, const Tensor& gout, Tensor& gy_rows,
                                      Tensor& gslot_weight) {
  int64_t T = gout.size(0), d = gout.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(gout.dtype(), [&]<typename T_>() {
    const T_ *py = y_rows.data<T_>(), *pw = slot_weight.data<T_>(), *pg = gout.data<T_>();
    T_ *pgy = gy_rows.data<T_>(), *pgw = gslot_weight.data<T_>();
    parallel_for(T, rows_grain(d), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const T_* g = pg + t * d;
        for (int64_t s = to[t]; s < to[t + 1]; ++s) {
          if (sr[s] < 0) {
            pgw[s] = T_(0);
            continue;
          }
          pgw[s] = dot(py + sr[s] * d, g, d);
          T_* gy = pgy + sr[s] * d;
          T_ w = pw[s];
          for (int64_t j = 0; j < d; ++j) gy[j] = w * g[j];
        }
      }
    });
  });
}

void CpuBackend::moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                                Tensor& h, Tensor& g, Tensor& a, Tensor& y_rows) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2);
  const int64_t* off = expert_offsets.data<int64_t>();
  bool swiglu = w.act == ExpertActivation::swiglu;
  std::vector<Tile> tiles = row_tiles(off, E);
  dispatch_dtype(x_rows.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      MOELAB_FAIL("moe_expert_ffn: float tensors only");
    } else {
      const T *px = x_rows.data<T>(), *w1 = w.w1.data<T>(), *w2 = w.w2.data<T>();
      const T* b1 = w.b1.defined() ? w.b1.data<T>() : nullptr;
      const T* b2 = w.b2.defined() ? w.b2.data<T>() : nullptr;
      const T* w3 = swiglu ? w.w3.data<T>() : nullptr;
      T *ph = h.data<T>(), *pa = a.data<T>(), *py = y_rows.data<T>();
      T* pgate = swiglu ? g.data<T>() : nullptr;
      for_each_tile(tiles, [&](const Tile& t) {
        int64_t e = t.e, r0 = t.begin, n = t.end - t.begin;
        const T* x = px + r0 * d;
        gemm<T>(false, false, n, f, d, x, d, w1 + e * d * f, f, T(0), ph + r0 * f, f);
        if (swiglu) gemm<T>(false, false, n, f, d, x, d, w3 + e * d * f, f, T(0), pgate + r0 * f, f);
        // Bias and activation, fused in one pass over the hidden rows.
        for (int64_t r = r0; r < t.end; ++r) {
          T *hr = ph + r * f, *ar = pa + r * f;
          if (b1)
            for (int64_t j = 0; j < f; ++j) hr[j] += b1[e * f + j];
          switch (w.act) {
            case ExpertActivation::relu:
              for (int64_t j = 0; j < f; ++j) ar[j] = hr[j] > T(0) ? hr[j] : T(0);
              break;
            case ExpertActivation::gelu:
#pragma omp simd
              for (int64_t j = 0; j < f; ++j) ar[j] = kern::fast_unary<UnaryOp::gelu_tanh, T>(hr[j], T(0));
              break;
            case ExpertActivation::swiglu: {
              const T* gr = pgate + r * f;
#pragma omp simd
              for (int64_t j = 0; j < f; ++j) ar[j] = kern::fast_unary<UnaryOp::silu, T>(hr[j], T(0)) * gr[j];
              break;
            }
          }
        }
        T* y = py + r0 * d;
        if (b2)
          for (int64_t r = 0; r < n; ++r) std::copy(b2 + e * d, b2 + (e + 1) * d, y + r * d);
        gemm<T>(false, false, n, d, f, pa + r0 * f, f, w2 + e * f * d, d, b2 ? T(1) : T(0), y, d);
      });
    }
  });
}

void CpuBackend::moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets,
                                         const ExpertWeights& w, const Tensor& h, const Tensor& g, const Tensor& a,
                                         const Tensor& gy_rows, Tensor& gx_rows, ExpertWeights& grads) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2);
  const int64_t* off = expert_offsets.data<int64_t>();
  int64_t R = off[E];
  bool swiglu = w.act == ExpertActivation::swiglu;
  std::vector<Tile> rows = row_tiles(off, E), cols_f = column_tiles(off, E, f), cols_d = column_tiles(off, E, d);
  std::vector<int64_t> empty;
  for (int64_t e = 0; e < E; ++e)
    if (off[e + 1] == off[e]) empty.push_back(e);
  dispatch_dtype(x_rows.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      MOELAB_FAIL("moe_expert_ffn_backward: float tensors only");
    } else {
      // Experts without rows get zero gradients.
      for (Tensor* t : {&grads.w1, &grads.b1, &grads.w2, &grads.b2, &grads.w3}) {
        if (!t->defined()) continue;
        int64_t stride = t->numel() / E;
        for (int64_t e : empty) std::fill(t->data<T>() + e * stride, t->data<T>() + (e + 1) * stride, T(0));
      }
      Tensor dh_t = Tensor::empty(Shape{R, f}, x_rows.dtype());
      Tensor dg_t = swiglu ? Tensor::empty(Shape{R, f}, x_rows.dtype()) : Tensor();
      const T *px = x_rows.data<T>(), *w1 = w.w1.data<T>(), *w2 = w.w2.data<T>();
      const T* w3 = swiglu ? w.w3.data<T>() : nullptr;
      const T *ph = h.data<T>(), *pa = a.data<T>(), *pgy = gy_rows.data<T>();
      const T* pgate = swiglu ? g.data<T>() : nullptr;
      T *gx = gx_rows.data<T>(), *gw1 = grads.w1.data<T>(), *gw2 = grads.w2.data<T>();
      T* gb1 = grads.b1.defined() ? grads.b1.data<T>() : nullptr;
      T* gb2 = grads.b2.defined() ? grads.b2.data<T>() : nullptr;
      T* gw3 = swiglu ? grads.w3.data<T>() : nullptr;
      T *pdh = dh_t.data<T>(), *pdg = swiglu ? dg_t.data<T>() : nullptr;
      // Columns [c0, c1) of expert e's gw2 = a^T gy and gb2 (over d), of gw1 = x^T dh, gb1, gw3 = x^T dg (over f).
      auto weight_grads_d = [&](int64_t e, int64_t c0, int64_t c1) {
        int64_t r0 = off[e], n = off[e + 1] - off[e], nc = c1 - c0;
        gemm<T>(true, false, f, nc, n, pa + r0 * f, f, pgy + r0 * d + c0, d, T(0), gw2 + e * f * d + c0, d);
        if (gb2) column_sum(pgy + r0 * d + c0, n, nc, d, gb2 + e * d + c0);
      };
      auto weight_grads_f = [&](int64_t e, int64_t c0, int64_t c1) {
        int64_t r0 = off[e], n = off[e + 1] - off[e], nc = c1 - c0;
        gemm<T>(true, false, d, nc, n, px + r0 * d, d, pdh + r0 * f + c0, f, T(0), gw1 + e * d * f + c0, f);
        if (gb1) column_sum(pdh + r0 * f + c0, n, nc, f, gb1 + e * f + c0);
        if (swiglu)
          gemm<T>(true, false, d, nc, n, px + r0 * d, d, pdg + r0 * f + c0, f, T(0), gw3 + e * d * f + c0, f);
      };
      // Row tiles: da = gy W2^T, dh = da * act'(h) (dg = da * silu(h) for swiglu), gx = dh W1^T (+ dg W3^T).
      for_each_tile(rows, [&](const Tile& t) {
        int64_t e = t.e, r0 = t.begin, n = t.end - t.begin;
        T* dh = pdh + r0 * f;
        gemm<T>(false, true, n, f, d, pgy + r0 * d, d, w2 + e * f * d, d, T(0), dh, f);
        for (int64_t r = r0; r < t.end; ++r) {
          T* dr = pdh + r * f;
          const T* hr = ph + r * f;
          switch (w.act) {
            case ExpertActivation::relu:
              for (int64_t j = 0; j < f; ++j) dr[j] = hr[j] > T(0) ? dr[j] : T(0);
              break;
            case ExpertActivation::gelu:
#pragma omp simd
              for (int64_t j = 0; j < f; ++j)
                dr[j] *= kern::fast_unary_derivative<UnaryOp::gelu_tanh, T>(hr[j], T(0), T(0));
              break;
            case ExpertActivation::swiglu: {
              const T* gr = pgate + r * f;
              T* dgr = pdg + r * f;
#pragma omp simd
              for (int64_t j = 0; j < f; ++j) {
                T s = kern::fast_unary<UnaryOp::sigmoid, T>(hr[j], T(0));
                T da = dr[j];
                dgr[j] = da * hr[j] * s;
                dr[j] = da * gr[j] * s * (T(1) + hr[j] * (T(1) - s));
              }
              break;
            }
          }
        }
        gemm<T>(false, true, n, d, f, dh, f, w1 + e * d * f, f, T(0), gx + r0 * d, d);
        if (swiglu) gemm<T>(false, true, n, d, f, pdg + r0 * f, f, w3 + e * d * f, f, T(1), gx + r0 * d, d);
        if (t.begin == off[e] && t.end == off[e + 1]) {  // the expert's only tile: its weight gradients too
          weight_grads_d(e, 0, d);
          weight_grads_f(e, 0, f);
        }
      });
      // Column tiles of the larger experts' weight gradients.
      for_each_tile(cols_d, [&](const Tile& t) { weight_grads_d(t.e, t.begin, t.end); });
      for_each_tile(cols_f, [&](const Tile& t) { weight_grads_f(t.e, t.begin, t.end); });
    }
  });
}

}  // namespace moelab
