// cpu: optimizer updates (OpenMP over elements, in the parameter's precision) and the sum of squares
// (fixed chunks added in order, so the result does not depend on the thread count).
#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"
#include "core/kernels/optim.h"

namespace moelab {

namespace {
void check_pair(const Tensor& p, const Tensor& other, const char* kernel, const char* what) {
  MOELAB_CHECK(other.defined() && other.numel() == p.numel() && other.dtype() == p.dtype(),
               kernel << ": " << what << " must match the parameter (" << p.numel() << " x "
                      << dtype_name(p.dtype()) << ")");
}
template <typename F> void for_float(const Tensor& p, const char* kernel, F&& f) {
  MOELAB_CHECK(is_floating(p.dtype()), kernel << ": float parameters only, got " << dtype_name(p.dtype()));
  dispatch_dtype(p.dtype(), [&]<typename U>() {
    if constexpr (std::is_floating_point_v<U>) f.template operator()<U>();
  });
}
}  // namespace

void CpuBackend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& h) {
  check_pair(param, grad, "adamw_update", "grad");
  check_pair(param, m, "adamw_update", "exp_avg");
  check_pair(param, v, "adamw_update", "exp_avg_sq");
  for_float(param, "adamw_update", [&]<typename T>() {
    auto c = kern::adamw_coeffs<T>(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step);
    T *pp = param.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
    const T* pg = grad.data<T>();
    cpu::parallel_for(param.numel(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) kern::adamw_element<T>(pp[i], pg[i], pm[i], pv[i], c);
    });
  });
}

void CpuBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, double lr, double momentum,
                            double weight_decay, bool nesterov, bool first_step) {
  check_pair(param, grad, "sgd_update", "grad");
  if (momentum != 0) check_pair(param, buf, "sgd_update", "momentum buffer");
  for_float(param, "sgd_update", [&]<typename T>() {
    kern::SgdCoeffs<T> c{T(lr), T(momentum), T(weight_decay), nesterov, first_step};
    T* pp = param.data<T>();
    T* pb = momentum != 0 ? buf.data<T>() : nullptr;
    const T* pg = grad.data<T>();
    cpu::parallel_for(param.numel(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
      if (pb) {
        for (int64_t i = b; i < e; ++i) kern::sgd_element<T>(pp[i], pg[i], pb + i, c);
      } else {
        for (int64_t i = b; i < e; ++i) kern::sgd_element<T>(pp[i], pg[i], nullptr, c);
      }
    });
  });
}

void CpuBackend::rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                                double alpha, double eps, double weight_decay, bool centered) {
  check_pair(param, grad, "rmsprop_update", "grad");
  check_pair(param, square_avg, "rmsprop_update", "square_avg");
  if (centered) check_pair(param, grad_avg, "rmsprop_update", "grad_avg");
  for_float(param, "rmsprop_update", [&]<typename T>() {
    kern::RmspropCoeffs<T> c{T(lr), T(alpha), T(1.0 - alpha), T(eps), T(weight_decay), centered};
    T *pp = param.data<T>(), *ps = square_avg.data<T>();
    T* pa = centered ? grad_avg.data<T>() : nullptr;
    const T* pg = grad.data<T>();
    cpu::parallel_for(param.numel(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
      if (pa) {
        for (int64_t i = b; i < e; ++i) kern::rmsprop_element<T>(pp[i], pg[i], ps[i], pa + i, c);
      } else {
        for (int64_t i = b; i < e; ++i) kern::rmsprop_element<T>(pp[i], pg[i], ps[i], nullptr, c);
      }
    });
  });
}

double CpuBackend::sum_squares(const Tensor& x) {
  Tensor c = x.contiguous();
  const int64_t n = c.numel();
  constexpr int64_t kChunk = 1 << 16;  // fixed: the partial sums and their order do not depend on threads
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  dispatch_dtype(c.dtype(), [&]<typename T>() {
    const T* p = c.data<T>();
    cpu::parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t k = c0; k < c1; ++k) {
        double acc = 0;
        int64_t e = std::min(n, (k + 1) * kChunk);
#pragma omp simd reduction(+ : acc)
        for (int64_t i = k * kChunk; i < e; ++i) acc += static_cast<double>(p[i]) * static_cast<double>(p[i]);
        partial[static_cast<size_t>(k)] = acc;
      }
    });
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace moelab
