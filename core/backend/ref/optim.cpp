// ref: optimizer updates and the sum of squares, element by element in double (the specification).
#include "core/backend/ref/ref_backend.h"
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

void RefBackend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& h) {
  check_pair(param, grad, "adamw_update", "grad");
  check_pair(param, m, "adamw_update", "exp_avg");
  check_pair(param, v, "adamw_update", "exp_avg_sq");
  for_float(param, "adamw_update", [&]<typename T>() {
    auto c = kern::adamw_coeffs<double>(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step);
    T *pp = param.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
    const T* pg = grad.data<T>();
    for (int64_t i = 0; i < param.numel(); ++i) {
      double p = pp[i], mm = pm[i], vv = pv[i];
      kern::adamw_element<double>(p, pg[i], mm, vv, c);
      pp[i] = static_cast<T>(p), pm[i] = static_cast<T>(mm), pv[i] = static_cast<T>(vv);
    }
  });
}

void RefBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, double lr, double momentum,
                            double weight_decay, bool nesterov, bool first_step) {
  check_pair(param, grad, "sgd_update", "grad");
  if (momentum != 0) check_pair(param, buf, "sgd_update", "momentum buffer");
  for_float(param, "sgd_update", [&]<typename T>() {
    kern::SgdCoeffs<double> c{lr, momentum, weight_decay, nesterov, first_step};
    T* pp = param.data<T>();
    T* pb = momentum != 0 ? buf.data<T>() : nullptr;
    const T* pg = grad.data<T>();
    for (int64_t i = 0; i < param.numel(); ++i) {
      double p = pp[i], b = pb ? pb[i] : 0.0;
      kern::sgd_element<double>(p, pg[i], &b, c);
      pp[i] = static_cast<T>(p);
      if (pb) pb[i] = static_cast<T>(b);
    }
  });
}

void RefBackend::rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                                double alpha, double eps, double weight_decay, bool centered) {
  check_pair(param, grad, "rmsprop_update", "grad");
  check_pair(param, square_avg, "rmsprop_update", "square_avg");
  if (centered) check_pair(param, grad_avg, "rmsprop_update", "grad_avg");
  for_float(param, "rmsprop_update", [&]<typename T>() {
    kern::RmspropCoeffs<double> c{lr, alpha, 1.0 - alpha, eps, weight_decay, centered};
    T *pp = param.data<T>(), *ps = square_avg.data<T>();
    T* pa = centered ? grad_avg.data<T>() : nullptr;
    const T* pg = grad.data<T>();
    for (int64_t i = 0; i < param.numel(); ++i) {
      double p = pp[i], s = ps[i], a = pa ? pa[i] : 0.0;
      kern::rmsprop_element<double>(p, pg[i], s, &a, c);
      pp[i] = static_cast<T>(p), ps[i] = static_cast<T>(s);
      if (pa) pa[i] = static_cast<T>(a);
    }
  });
}

double RefBackend::sum_squares(const Tensor& x) {
  Tensor c = x.contiguous();
  double acc = 0;
  dispatch_dtype(c.dtype(), [&]<typename T>() {
    const T* p = c.data<T>();
    for (int64_t i = 0; i < c.numel(); ++i) acc += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  });
  return acc;
}

}  // namespace moelab
