// cpu: fused softmax + cross-entropy per row (label smoothing, ignore_index) and its backward; rows in
// parallel, each reduced by one thread in index order.
#include "core/kernels/loss.h"

#include <cmath>
#include <limits>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"
#include "core/kernels/softmax.h"

namespace moelab {

namespace {
template <typename I>
void check_targets(const I* t, int64_t M, int64_t C, int64_t ignore_index, const char* k) {
  for (int64_t r = 0; r < M; ++r)
    MOELAB_CHECK(int64_t(t[r]) == ignore_index || (t[r] >= 0 && int64_t(t[r]) < C),
                 k << ": target " << int64_t(t[r]) << " at row " << r << " is not a class in [0, " << C
                   << ") nor ignore_index " << ignore_index);
}
// Row shift (max ignoring NaN, 0 if infinite) and sum of exp(x - shift).
template <typename T>
void row_stats(const T* x, int64_t C, T& shift, double& sum) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < C; ++c) mx = x[c] > mx ? x[c] : mx;
  shift = kern::softmax_shift(mx);
  sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += std::exp(x[c] - shift);
}
}  // namespace

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& target, double smoothing,
                               int64_t ignore_index, Tensor& loss) {
  int64_t M = logits.size(0), C = logits.size(1);
  dispatch_float(logits.dtype(), "cross_entropy", [&]<typename T>() {
    dispatch_index(target.dtype(), "cross_entropy", [&]<typename I>() {
      const T* px = logits.data<T>();
      const I* pt = target.data<I>();
      T* pl = loss.data<T>();
      check_targets(pt, M, C, ignore_index, "cross_entropy");
      cpu::parallel_for(M, cpu::row_grain(C), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          if (int64_t(pt[r]) == ignore_index) {
            pl[r] = T(0);
            continue;
          }
          const T* xr = px + r * C;
          T shift;
          double sum, sum_x = 0;
          row_stats(xr, C, shift, sum);
          if (smoothing != 0)
            for (int64_t c = 0; c < C; ++c) sum_x += xr[c];
          double lse = double(shift) + std::log(sum);
          pl[r] = static_cast<T>(kern::cross_entropy_row(lse, double(xr[pt[r]]), sum_x, C, smoothing));
        }
      });
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                                        double smoothing, int64_t ignore_index, Tensor& glogits) {
  int64_t M = logits.size(0), C = logits.size(1);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    dispatch_index(target.dtype(), "cross_entropy_backward", [&]<typename I>() {
      const T *px = logits.data<T>(), *pgl = gloss.data<T>();
      const I* pt = target.data<I>();
      T* pg = glogits.data<T>();
      check_targets(pt, M, C, ignore_index, "cross_entropy_backward");
      T eps = static_cast<T>(smoothing);
      cpu::parallel_for(M, cpu::row_grain(C), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          T* gr = pg + r * C;
          int64_t t = int64_t(pt[r]);
          if (t == ignore_index) {
            std::fill(gr, gr + C, T(0));
            continue;
          }
          const T* xr = px + r * C;
          T shift;
          double sum;
          row_stats(xr, C, shift, sum);
          T inv = static_cast<T>(1.0 / sum), g = pgl[r];
          for (int64_t c = 0; c < C; ++c)
            gr[c] = kern::cross_entropy_grad(std::exp(xr[c] - shift) * inv, false, C, eps, g);
          gr[t] = kern::cross_entropy_grad(std::exp(xr[t] - shift) * inv, true, C, eps, g);
        }
      });
    });
  });
}

}  // namespace moelab
