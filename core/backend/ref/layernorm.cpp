// ref: layer normalization forward and backward, one row at a time in double.
#include "core/kernels/layernorm.h"

#include "core/backend/ref/ref_backend.h"

namespace moelab {

void RefBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                           Tensor& mean, Tensor& rstd) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "layernorm", [&]<typename T>() {
    const T* px = x.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    T *po = out.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>();
    for (int64_t r = 0; r < M; ++r) {
      const T* xr = px + r * N;
      double mu = 0, var = 0;
      for (int64_t j = 0; j < N; ++j) mu += double(xr[j]);
      mu /= double(N);
      for (int64_t j = 0; j < N; ++j) var += (double(xr[j]) - mu) * (double(xr[j]) - mu);
      var /= double(N);
      double rs = kern::layernorm_rstd(var, eps);
      pm[r] = static_cast<T>(mu);
      pr[r] = static_cast<T>(rs);
      for (int64_t j = 0; j < N; ++j)
        po[r * N + j] = static_cast<T>(
            kern::layernorm_value(double(xr[j]), mu, rs, pg ? double(pg[j]) : 1.0, pb ? double(pb[j]) : 0.0));
    }
  });
}

void RefBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                    const Tensor& rstd, const Tensor& gy, Tensor& gx, Tensor& ggamma,
                                    Tensor& gbeta) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "layernorm_backward", [&]<typename T>() {
    const T *px = x.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>(), *pgy = gy.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    T* pgx = gx.data<T>();
    std::vector<double> sg(ggamma.defined() ? N : 0, 0.0), sb(gbeta.defined() ? N : 0, 0.0);
    for (int64_t r = 0; r < M; ++r) {
      const T *xr = px + r * N, *gr = pgy + r * N;
      double mu = pm[r], rs = pr[r], mean_d = 0, mean_dx = 0;
      for (int64_t j = 0; j < N; ++j) {
        double xhat = (double(xr[j]) - mu) * rs, d = double(gr[j]) * (pg ? double(pg[j]) : 1.0);
        mean_d += d;
        mean_dx += d * xhat;
        if (!sg.empty()) sg[j] += double(gr[j]) * xhat;
        if (!sb.empty()) sb[j] += double(gr[j]);
      }
      mean_d /= double(N);
      mean_dx /= double(N);
      for (int64_t j = 0; j < N; ++j) {
        double xhat = (double(xr[j]) - mu) * rs, d = double(gr[j]) * (pg ? double(pg[j]) : 1.0);
        pgx[r * N + j] = static_cast<T>(kern::layernorm_grad_x(d, xhat, rs, mean_d, mean_dx));
      }
    }
    for (size_t j = 0; j < sg.size(); ++j) ggamma.data<T>()[j] = static_cast<T>(sg[j]);
    for (size_t j = 0; j < sb.size(); ++j) gbeta.data<T>()[j] = static_cast<T>(sb[j]);
  });
}

}  // namespace moelab
