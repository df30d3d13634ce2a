// cpu: layer normalization. Rows run in parallel; the gamma/beta gradients (sums over rows) are
// accumulated per fixed chunk of rows and the chunk partials added in order: no atomics, and the same
// bits for any thread count.
#include "core/kernels/layernorm.h"

#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

void CpuBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                           Tensor& mean, Tensor& rstd) {
  int64_t M = x.size(0), N = x.size(1);
  dispatch_float(x.dtype(), "layernorm", [&]<typename T>() {
    const T* px = x.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    T *po = out.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>();
    cpu::parallel_for(M, cpu::row_grain(N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * N;
        T* yr = po + r * N;
        double s = 0;
        for (int64_t j = 0; j < N; ++j) s += xr[j];
        T mu = static_cast<T>(s / double(N));
        double v = 0;  // two passes: the variance of data far from 0 stays accurate
        for (int64_t j = 0; j < N; ++j) v += double(xr[j] - mu) * double(xr[j] - mu);
        T rs = static_cast<T>(kern::layernorm_rstd(v / double(N), eps));
        pm[r] = mu;
        pr[r] = rs;
        if (pg && pb) {
          for (int64_t j = 0; j < N; ++j) yr[j] = kern::layernorm_value(xr[j], mu, rs, pg[j], pb[j]);
        } else {
          for (int64_t j = 0; j < N; ++j)
            yr[j] = kern::layernorm_value(xr[j], mu, rs, pg ? pg[j] : T(1), pb ? pb[j] : T(0));
        }
      }
    });
  });
}

void CpuBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                    const Tensor& rstd, const Tensor& gy, Tensor& gx, Tensor& ggamma,
                                    Tensor& gbeta) {
  int64_t M = x.size(0), N = x.size(1);
  bool want_g = ggamma.defined(), want_b = gbeta.defined();
  dispatch_float(x.dtype(), "layernorm_backward", [&]<typename T>() {
    const T *px = x.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>(), *pgy = gy.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    T* pgx = gx.data<T>();
    int64_t step = std::max(cpu::row_grain(N), (M + cpu::kMaxChunks - 1) / cpu::kMaxChunks);
    int64_t chunks = M > 0 ? (M + step - 1) / step : 0;
    // Per-chunk partial sums of gy * xhat (gamma) and gy (beta).
    std::vector<double> part_g(want_g ? chunks * N : 0), part_b(want_b ? chunks * N : 0);
    cpu::parallel_chunks(M, step, [&](int64_t c, int64_t r0, int64_t r1) {
      std::vector<T> xhat(N), d(N);
      double* sg = want_g ? part_g.data() + c * N : nullptr;
      double* sb = want_b ? part_b.data() + c * N : nullptr;
      for (int64_t r = r0; r < r1; ++r) {
        const T *xr = px + r * N, *gr = pgy + r * N;
        T mu = pm[r], rs = pr[r];
        double sd = 0, sdx = 0;
        for (int64_t j = 0; j < N; ++j) {
          xhat[j] = (xr[j] - mu) * rs;
          d[j] = pg ? gr[j] * pg[j] : gr[j];
          sd += d[j];
          sdx += double(d[j]) * double(xhat[j]);
        }
        T mean_d = static_cast<T>(sd / double(N)), mean_dx = static_cast<T>(sdx / double(N));
        T* gxr = pgx + r * N;
        for (int64_t j = 0; j < N; ++j) gxr[j] = kern::layernorm_grad_x(d[j], xhat[j], rs, mean_d, mean_dx);
        if (sg)
          for (int64_t j = 0; j < N; ++j) sg[j] += double(gr[j]) * double(xhat[j]);
        if (sb)
          for (int64_t j = 0; j < N; ++j) sb[j] += double(gr[j]);
      }
    });
    // Add the chunk partials in chunk order, columns in parallel.
    auto finish = [&](const std::vector<double>& part, Tensor& dst) {
      T* pd = dst.data<T>();
      cpu::parallel_for(N, 1024, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          double s = 0;
          for (int64_t c = 0; c < chunks; ++c) s += part[c * N + j];
          pd[j] = static_cast<T>(s);
        }
      });
    };
    if (want_g) finish(part_g, ggamma);
    if (want_b) finish(part_b, gbeta);
  });
}

}  // namespace moelab
