// ref: fused softmax + cross-entropy per row (label smoothing, ignore_index) and its backward, in double.
#include "core/kernels/loss.h"

#include <cmath>
#include <limits>

#include "core/backend/ref/ref_backend.h"
#include "core/kernels/softmax.h"

namespace moelab {

namespace {
// Targets must be class indices or ignore_index.
template <typename I>
void check_targets(const I* t, int64_t M, int64_t C, int64_t ignore_index, const char* k) {
  for (int64_t r = 0; r < M; ++r)
    MOELAB_CHECK(int64_t(t[r]) == ignore_index || (t[r] >= 0 && int64_t(t[r]) < C),
                 k << ": target " << int64_t(t[r]) << " at row " << r << " is not a class in [0, " << C
                   << ") nor ignore_index " << ignore_index);
}
// Row max (ignoring NaN) and sum of exp(x - shift), in double.
template <typename T>
void row_stats(const T* x, int64_t C, double& shift, double& sum) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t c = 0; c < C; ++c) mx = double(x[c]) > mx ? double(x[c]) : mx;
  shift = kern::softmax_shift(mx);
  sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += std::exp(double(x[c]) - shift);
}
}  // namespace

void RefBackend::cross_entropy(const Tensor& logits, const Tensor& target, double smoothing,
                               int64_t ignore_index, Tensor& loss) {
  int64_t M = logits.size(0), C = logits.size(1);
  dispatch_float(logits.dtype(), "cross_entropy", [&]<typename T>() {
    dispatch_index(target.dtype(), "cross_entropy", [&]<typename I>() {
      const T* px = logits.data<T>();
      const I* pt = target.data<I>();
      T* pl = loss.data<T>();
      check_targets(pt, M, C, ignore_index, "cross_entropy");
      for (int64_t r = 0; r < M; ++r) {
        if (int64_t(pt[r]) == ignore_index) {
          pl[r] = T(0);
          continue;
        }
        const T* xr = px + r * C;
        double shift, sum, sum_x = 0;
        row_stats(xr, C, shift, sum);
        for (int64_t c = 0; c < C; ++c) sum_x += double(xr[c]);
        double lse = shift + std::log(sum);
        pl[r] = static_cast<T>(kern::cross_entropy_row(lse, double(xr[pt[r]]), sum_x, C, smoothing));
      }
    });
  });
}

void RefBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                                        double smoothing, int64_t ignore_index, Tensor& glogits) {
  int64_t M = logits.size(0), C = logits.size(1);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    dispatch_index(target.dtype(), "cross_entropy_backward", [&]<typename I>() {
      const T *px = logits.data<T>(), *pgl = gloss.data<T>();
      const I* pt = target.data<I>();
      T* pg = glogits.data<T>();
      check_targets(pt, M, C, ignore_index, "cross_entropy_backward");
      for (int64_t r = 0; r < M; ++r) {
        T* gr = pg + r * C;
        if (int64_t(pt[r]) == ignore_index) {
          for (int64_t c = 0; c < C; ++c) gr[c] = T(0);
          continue;
        }
        const T* xr = px + r * C;
        double shift, sum;
        row_stats(xr, C, shift, sum);
        for (int64_t c = 0; c < C; ++c) {
          double p = std::exp(double(xr[c]) - shift) / sum;
          gr[c] =
              static_cast<T>(kern::cross_entropy_grad(p, c == int64_t(pt[r]), C, smoothing, double(pgl[r])));
        }
      }
    });
  });
}

}  // namespace moelab
