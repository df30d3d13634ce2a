// Stacked FFN experts.
#include "core/moe/experts.h"

#include "core/ops/ops.h"

namespace moelab::moe {

Experts::Experts(int64_t E, int64_t d, int64_t f, ExpertActivation a, bool bias, const nn::InitOptions& init,
                 RngStream& rng, DType dtype)
    : nn::Module("Experts"), num_experts(E), d_model(d), d_ff(f), act(a) {
  MOELAB_CHECK(E >= 1 && d >= 1 && f >= 1, "Experts: need E, d, d_ff >= 1, got " << E << ", " << d << ", " << f);
  w1 = register_parameter("w1", nn::init_weight(Shape{E, d, f}, d, init, rng, dtype));
  if (bias) b1 = register_parameter("b1", nn::init_bias(Shape{E, f}, d, init, rng, dtype));
  w2 = register_parameter("w2", nn::init_weight(Shape{E, f, d}, f, init, rng, dtype));
  if (bias) b2 = register_parameter("b2", nn::init_bias(Shape{E, d}, f, init, rng, dtype));
  if (act == ExpertActivation::swiglu) w3 = register_parameter("w3", nn::init_weight(Shape{E, d, f}, d, init, rng, dtype));
}

ExpertWeights Experts::weights() const {
  ExpertWeights w;
  w.w1 = w1, w.b1 = b1, w.w2 = w2, w.b2 = b2, w.w3 = w3, w.act = act;
  return w;
}

Tensor Experts::forward_expert(int64_t e, const Tensor& x) const {
  MOELAB_CHECK(e >= 0 && e < num_experts, "Experts: expert " << e << " of " << num_experts);
  Tensor h = matmul(x, w1.select(0, e));
  if (b1.defined()) h = h + b1.select(0, e);
  Tensor a;
  switch (act) {
    case ExpertActivation::relu: a = relu(h); break;
    case ExpertActivation::gelu: a = gelu(h, GeluForm::tanh); break;
    case ExpertActivation::swiglu: a = silu(h) * matmul(x, w3.select(0, e)); break;
  }
  Tensor y = matmul(a, w2.select(0, e));
  if (b2.defined()) y = y + b2.select(0, e);
  return y;
}

}  // namespace moelab::moe
