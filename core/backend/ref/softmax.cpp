// ref: softmax, log-softmax (with the causal mask), their backward and logsumexp; rows in double.
#include "core/kernels/softmax.h"

#include "core/backend/ref/ref_backend.h"

namespace moelab {

void RefBackend::softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "softmax", [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t r = 0; r < M; ++r) {
      const T* xr = px + r * N;
      T* yr = po + r * N;
      int64_t kept = kern::softmax_kept(r, N, causal_tq);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < kept; ++j) mx = double(xr[j]) > mx ? double(xr[j]) : mx;
      double shift = kern::softmax_shift(mx), sum = 0;
      for (int64_t j = 0; j < kept; ++j) sum += std::exp(double(xr[j]) - shift);
      double log_sum = std::log(sum);
      for (int64_t j = 0; j < kept; ++j)
        yr[j] = static_cast<T>(kern::softmax_value(double(xr[j]), shift, sum, log_sum, log));
      for (int64_t j = kept; j < N; ++j) yr[j] = kern::softmax_masked_value<T>(log);
    }
  });
}

void RefBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  int64_t M = y.size(0), N = y.size(1);
  dispatch_float(y.dtype(), "softmax_backward", [&]<typename T>() {
    const T *py = y.data<T>(), *pg = gy.data<T>();
    T* po = gx.data<T>();
    for (int64_t r = 0; r < M; ++r) {
      const T *yr = py + r * N, *gr = pg + r * N;
      double dot = 0;
      for (int64_t j = 0; j < N; ++j) {
        if (log)
          dot += kern::log_softmax_counts(double(yr[j])) ? double(gr[j]) : 0.0;
        else
          dot += double(gr[j]) * double(yr[j]);
      }
      for (int64_t j = 0; j < N; ++j)
        po[r * N + j] = static_cast<T>(kern::softmax_grad(double(yr[j]), double(gr[j]), dot, log));
    }
  });
}

void RefBackend::logsumexp(const Tensor& x, Tensor& out) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "logsumexp", [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t r = 0; r < M; ++r) {
      const T* xr = px + r * N;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < N; ++j) mx = double(xr[j]) > mx ? double(xr[j]) : mx;
      double shift = kern::softmax_shift(mx), sum = 0;
      for (int64_t j = 0; j < N; ++j) sum += std::exp(double(xr[j]) - shift);
      po[r] = static_cast<T>(kern::logsumexp_value(mx, sum));
    }
  });
}

}  // namespace moelab
