// cpu: softmax, log-softmax (with the causal mask), their backward and logsumexp. Rows run in parallel;
// each row is reduced by one thread in index order, so results do not depend on the thread count.
#include "core/kernels/softmax.h"
#include "core/kernels/fast_math.h"

#include <cmath>
#include <limits>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

namespace {
// Rows are short (attention rows are often < 100 keys), so one long dependency chain of compares or adds
// would bound the time: 8 independent lanes combined in a fixed order (the same for any thread count).
constexpr int kLanes = 8;

template <typename T>
T row_max(const T* x, int64_t n) {
  T lane[kLanes];
  for (T& m : lane) m = -std::numeric_limits<T>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  for (; j < n; ++j) lane[0] = x[j] > lane[0] ? x[j] : lane[0];
  T mx = lane[0];  // NaN is skipped by every compare, as in a single chain
  for (int l = 1; l < kLanes; ++l) mx = lane[l] > mx ? lane[l] : mx;
  return mx;
}

// sum over j < n of term(j) in double, lane-wise as row_max.
template <typename F>
double lane_sum(int64_t n, F term) {
  double lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += term(j + l);
  for (; j < n; ++j) lane[0] += term(j);
  double sum = 0;
  for (double v : lane) sum += v;
  return sum;
}
}  // namespace

void CpuBackend::softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "softmax", [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    cpu::parallel_for(M, cpu::row_grain(N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * N;
        T* yr = po + r * N;
        int64_t kept = kern::softmax_kept(r, N, causal_tq);
        T shift = kern::softmax_shift(row_max(xr, kept));
        // The exps vectorize into the output row; the sum then runs over fixed lanes in double.
#pragma omp simd
        for (int64_t j = 0; j < kept; ++j) yr[j] = kern::fast_exp(xr[j] - shift);
        double sum = lane_sum(kept, [&](int64_t j) { return double(yr[j]); });
        if (log) {
          T sub = shift + static_cast<T>(std::log(sum));
          for (int64_t j = 0; j < kept; ++j) yr[j] = xr[j] - sub;
        } else {
          T inv = static_cast<T>(1.0 / sum);
          for (int64_t j = 0; j < kept; ++j) yr[j] *= inv;
        }
        for (int64_t j = kept; j < N; ++j) yr[j] = kern::softmax_masked_value<T>(log);
      }
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  int64_t M = y.size(0), N = y.size(1);
  dispatch_float(y.dtype(), "softmax_backward", [&]<typename T>() {
    const T *py = y.data<T>(), *pg = gy.data<T>();
    T* po = gx.data<T>();
    cpu::parallel_for(M, cpu::row_grain(N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T *yr = py + r * N, *gr = pg + r * N;
        T* xr = po + r * N;
        double dot = 0;
        if (log) {
          for (int64_t j = 0; j < N; ++j) dot += kern::log_softmax_counts(yr[j]) ? gr[j] : T(0);
        } else {
          dot = lane_sum(N, [&](int64_t j) { return double(gr[j]) * double(yr[j]); });
        }
        T d = static_cast<T>(dot);
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) xr[j] = kern::softmax_grad(yr[j], gr[j], d, log);
      }
    });
  });
}

void CpuBackend::logsumexp(const Tensor& x, Tensor& out) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "logsumexp", [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    cpu::parallel_for(M, cpu::row_grain(N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * N;
        T mx = row_max(xr, N), shift = kern::softmax_shift(mx);
        double sum = 0;
        for (int64_t j = 0; j < N; ++j) sum += std::exp(xr[j] - shift);
        po[r] = static_cast<T>(kern::logsumexp_value(double(mx), sum));
      }
    });
  });
}

}  // namespace moelab
