// Layer normalization over the last dim, with optional affine gamma/beta; one fused kernel each way.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::contiguous_input;
using detail::view_as_shape;

// x: (..., N), gamma/beta: (N) or undefined -> (..., N)
Tensor layernorm(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double eps) {
  Backend& be = detail::backend_of({&x_in, &gamma_in, &beta_in}, "layernorm");
  detail::check_float(x_in, "layernorm");
  MOELAB_CHECK(x_in.dim() >= 1, "layernorm needs at least 1 dim, got a 0-d tensor");
  int64_t N = x_in.size(-1);
  for (const Tensor* p : {&gamma_in, &beta_in}) {
    if (!p->defined()) continue;
    detail::check_same_dtype(x_in, *p, "layernorm");
    MOELAB_CHECK(p->dim() == 1 && p->size(0) == N, "layernorm: " << (p == &gamma_in ? "gamma" : "beta")
                                                                 << " must be (" << N << "), got "
                                                                 << p->shape().str());
  }
  MOELAB_CHECK(eps >= 0, "layernorm: eps must be >= 0, got " << eps);
  Tensor x = contiguous_input(x_in);
  Tensor gamma = gamma_in.defined() ? contiguous_input(gamma_in) : Tensor();
  Tensor beta = beta_in.defined() ? contiguous_input(beta_in) : Tensor();
  int64_t M = N > 0 ? x.numel() / N : 0;
  Tensor out = detail::empty_like(x);
  Tensor mean = Tensor::empty(Shape{M}, x.dtype(), x.device()),
         rstd = Tensor::empty(Shape{M}, x.dtype(), x.device());
  if (x.numel() > 0) {
    Tensor o2 = view_as_shape(out, Shape{M, N});
    be.layernorm(view_as_shape(x, Shape{M, N}), gamma, beta, eps, o2, mean, rstd);
  }
  bool want_g = gamma_in.defined() && gamma_in.requires_grad(),
       want_b = beta_in.defined() && beta_in.requires_grad();
  record(out, "layernorm", {x_in, gamma_in, beta_in},
         [x, gamma, mean, rstd, M, N, want_g, want_b](const Tensor& g) {
           Tensor gc = contiguous_input(g), gx = detail::empty_like(x);
           Tensor gg = want_g ? Tensor::empty(Shape{N}, x.dtype(), x.device()) : Tensor();
           Tensor gb = want_b ? Tensor::empty(Shape{N}, x.dtype(), x.device()) : Tensor();
           if (x.numel() > 0) {
             Tensor gx2 = view_as_shape(gx, Shape{M, N});
             backend_for(x.device())
                 .layernorm_backward(view_as_shape(x, Shape{M, N}), gamma, mean, rstd,
                                     view_as_shape(gc, Shape{M, N}), gx2, gg, gb);
           } else {
             if (gg.defined()) gg.fill_(0);
             if (gb.defined()) gb.fill_(0);
           }
           return std::vector<Tensor>{gx, gg, gb};
         });
  return out;
}

}  // namespace moelab
