// The dense feed-forward block (plain and gated).
#include "core/nn/mlp.h"

#include "core/ops/ops.h"

namespace moelab::nn {

Activation parse_activation(std::string_view name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu" || name == "gelu_tanh") return Activation::gelu_tanh;
  if (name == "gelu_erf") return Activation::gelu_erf;
  if (name == "silu" || name == "swish") return Activation::silu;
  MOELAB_FAIL("unknown activation '" << name << "'; use relu, gelu (tanh form), gelu_tanh, gelu_erf or silu");
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu: return "relu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::gelu_erf: return "gelu_erf";
    case Activation::silu: return "silu";
  }
  return "?";
}

Tensor apply_activation(Activation a, const Tensor& x) {
  switch (a) {
    case Activation::relu: return relu(x);
    case Activation::gelu_tanh: return gelu(x, GeluForm::tanh);
    case Activation::gelu_erf: return gelu(x, GeluForm::erf);
    case Activation::silu: return silu(x);
  }
  return x;
}

MLP::MLP(const MlpOptions& opt, RngStream& rng) : Module(opt.gated ? "GatedMLP" : "MLP"), options(opt) {
  MOELAB_CHECK(opt.dim > 0 && opt.hidden > 0, "MLP: dim (" << opt.dim << ") and hidden (" << opt.hidden
                                                           << ") must be positive");
  fc1 = register_module("fc1", std::make_shared<Linear>(opt.dim, opt.hidden, opt.bias, rng, opt.init, opt.dtype));
  fc2 = register_module("fc2", std::make_shared<Linear>(opt.hidden, opt.dim, opt.bias, rng, opt.init, opt.dtype));
  if (opt.gated)
    fc3 = register_module("fc3", std::make_shared<Linear>(opt.dim, opt.hidden, opt.bias, rng, opt.init, opt.dtype));
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = apply_activation(options.activation, fc1->forward(x));
  if (fc3) h = h * fc3->forward(x);
  return fc2->forward(h);
}

}  // namespace moelab::nn
