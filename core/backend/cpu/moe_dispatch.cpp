// cpu: MoE routing plan (histogram, scan, stable counting sort, capacity), row gather/scatter, combine and
// the grouped expert FFN: one OpenBLAS GEMM pair per non-empty expert. Small experts run in parallel
// across threads (BLAS single-threaded inside); large ones run one after another with threaded BLAS.
// Every output element is written by one thread in a fixed order: results do not depend on the thread count.
#include <cblas.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

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

template <typename T> T act_value(ExpertActivation act, T h) {
  if (act == ExpertActivation::relu) return h > T(0) ? h : T(0);
  if (act == ExpertActivation::gelu) return kern::unary<UnaryOp::gelu_tanh, T>(h, T(0));
  return kern::unary<UnaryOp::silu, T>(h, T(0));
}

// Rows per parallel chunk for row-wise loops of width w (about 16K elements per chunk).
int64_t rows_grain(int64_t w) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(w, 1)); }

// The order in which expert segments run: non-empty experts, largest first (better load balance).
struct Segments {
  std::vector<int64_t> order;  // expert ids
  bool expert_parallel = false;
};
Segments plan_segments(const int64_t* off, int64_t E, int64_t width) {
  Segments s;
  int64_t R = off[E], largest = 0;
  for (int64_t e = 0; e < E; ++e)
    if (off[e + 1] > off[e]) {
      s.order.push_back(e);
      largest = std::max(largest, off[e + 1] - off[e]);
    }
  std::stable_sort(s.order.begin(), s.order.end(),
                   [&](int64_t a, int64_t b) { return off[a + 1] - off[a] > off[b + 1] - off[b]; });
  int64_t threads = omp_get_max_threads();
  // Experts in parallel when no expert holds a thread's share of the rows (else threaded BLAS per expert)
  // and the work is worth a fork (width = d * f multiply-adds per row).
  s.expert_parallel = threads > 1 && !omp_in_parallel() && s.order.size() > 1 && largest * threads < R &&
                      R * width >= (int64_t(1) << 18);
  return s;
}

// Runs body(e) for every segment: in parallel across experts, or serially (each body may use threads).
template <typename F> void for_each_segment(const Segments& s, F&& body) {
  if (s.expert_parallel) {
    int64_t n = static_cast<int64_t>(s.order.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) body(s.order[i]);
  } else {
    for (int64_t e : s.order) body(e);
  }
}

// Column sums of rows (n, w) into out (w), rows added in order.
template <typename T> void column_sum(const T* rows, int64_t n, int64_t w, T* out) {
  std::fill(out, out + w, T(0));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w; ++j) out[j] += rows[r * w + j];
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
  Segments segs = plan_segments(off, E, d * f);
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
      for_each_segment(segs, [&](int64_t e) {
        int64_t r0 = off[e], n = off[e + 1] - off[e];
        const T* x = px + r0 * d;
        gemm<T>(false, false, n, f, d, x, d, w1 + e * d * f, f, T(0), ph + r0 * f, f);
        if (swiglu) gemm<T>(false, false, n, f, d, x, d, w3 + e * d * f, f, T(0), pgate + r0 * f, f);
        // Bias and activation, fused in one pass over the hidden rows.
        parallel_for(n, rows_grain(f), [&](int64_t b, int64_t end) {
          for (int64_t r = r0 + b; r < r0 + end; ++r) {
            T *hr = ph + r * f, *ar = pa + r * f;
            if (b1)
              for (int64_t j = 0; j < f; ++j) hr[j] += b1[e * f + j];
            switch (w.act) {
              case ExpertActivation::relu:
                for (int64_t j = 0; j < f; ++j) ar[j] = hr[j] > T(0) ? hr[j] : T(0);
                break;
              case ExpertActivation::gelu:
                for (int64_t j = 0; j < f; ++j) ar[j] = kern::unary<UnaryOp::gelu_tanh, T>(hr[j], T(0));
                break;
              case ExpertActivation::swiglu: {
                const T* gr = pgate + r * f;
                for (int64_t j = 0; j < f; ++j) ar[j] = kern::unary<UnaryOp::silu, T>(hr[j], T(0)) * gr[j];
                break;
              }
            }
          }
        });
        T* y = py + r0 * d;
        if (b2) {
          for (int64_t r = 0; r < n; ++r) std::copy(b2 + e * d, b2 + (e + 1) * d, y + r * d);
        }
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
  Segments segs = plan_segments(off, E, d * f);
  // Experts without rows get zero gradients.
  std::vector<Tensor*> outs = {&grads.w1, &grads.b1, &grads.w2, &grads.b2, &grads.w3};
  std::vector<int64_t> per_expert;
  for (int64_t e = 0; e < E; ++e)
    if (off[e + 1] == off[e]) per_expert.push_back(e);
  dispatch_dtype(x_rows.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      MOELAB_FAIL("moe_expert_ffn_backward: float tensors only");
    } else {
      for (Tensor* t : outs) {
        if (!t->defined()) continue;
        int64_t stride = t->numel() / E;
        for (int64_t e : per_expert) std::fill(t->data<T>() + e * stride, t->data<T>() + (e + 1) * stride, T(0));
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
      for_each_segment(segs, [&](int64_t e) {
        int64_t r0 = off[e], n = off[e + 1] - off[e];
        const T *x = px + r0 * d, *gy = pgy + r0 * d, *ar = pa + r0 * f;
        T* dh = pdh + r0 * f;
        // da = gy W2^T, then dh = da * act'(h) in place (and dg = da * silu(h) for swiglu).
        gemm<T>(false, true, n, f, d, gy, d, w2 + e * f * d, d, T(0), dh, f);
        gemm<T>(true, false, f, d, n, ar, f, gy, d, T(0), gw2 + e * f * d, d);
        if (gb2) column_sum(gy, n, d, gb2 + e * d);
        parallel_for(n, rows_grain(f), [&](int64_t b, int64_t end) {
          for (int64_t r = b; r < end; ++r) {
            T* dr = dh + r * f;
            const T* hr = ph + (r0 + r) * f;
            switch (w.act) {
              case ExpertActivation::relu:
                for (int64_t j = 0; j < f; ++j) dr[j] = hr[j] > T(0) ? dr[j] : T(0);
                break;
              case ExpertActivation::gelu:
                for (int64_t j = 0; j < f; ++j)
                  dr[j] *= kern::unary_derivative<UnaryOp::gelu_tanh, T>(hr[j], T(0), T(0));
                break;
              case ExpertActivation::swiglu: {
                const T* gr = pgate + (r0 + r) * f;
                T* dgr = pdg + (r0 + r) * f;
                for (int64_t j = 0; j < f; ++j) {
                  T s = kern::sigmoid(hr[j]);
                  T da = dr[j];
                  dgr[j] = da * hr[j] * s;
                  dr[j] = da * gr[j] * s * (T(1) + hr[j] * (T(1) - s));
                }
                break;
              }
            }
          }
        });
        gemm<T>(true, false, d, f, n, x, d, dh, f, T(0), gw1 + e * d * f, f);
        if (gb1) column_sum(dh, n, f, gb1 + e * f);
        gemm<T>(false, true, n, d, f, dh, f, w1 + e * d * f, f, T(0), gx + r0 * d, d);
        if (swiglu) {
          const T* dg = pdg + r0 * f;
          gemm<T>(true, false, d, f, n, x, d, dg, f, T(0), gw3 + e * d * f, f);
          gemm<T>(false, true, n, d, f, dg, f, w3 + e * d * f, f, T(1), gx + r0 * d, d);
        }
      });
    }
  });
}

}  // namespace moelab
