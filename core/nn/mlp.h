#pragma once
// The dense feed-forward block: fc2(act(fc1(x))), or the gated form fc2(act(fc1(x)) * fc3(x))
// (SwiGLU when act = silu, GEGLU when act = gelu). Parameter names: fc1, fc2 (timm's Mlp), fc3 for the
// gate's "up" projection.
#include <cstdint>
#include <string_view>

#include "core/nn/init.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"

namespace moelab::nn {

enum class Activation : uint8_t { relu, gelu_tanh, gelu_erf, silu };
// "relu", "gelu" (tanh form), "gelu_tanh", "gelu_erf", "silu"/"swish"; throws listing the valid names.
Activation parse_activation(std::string_view name);
const char* activation_name(Activation a);
Tensor apply_activation(Activation a, const Tensor& x);

struct MlpOptions {
  int64_t dim = 0;     // input and output width
  int64_t hidden = 0;  // inner width
  Activation activation = Activation::gelu_tanh;
  bool gated = false;  // SwiGLU-style gating (adds fc3)
  bool bias = true;
  InitOptions init{};
  DType dtype = DType::f32;
};

class MLP : public Module {
 public:
  MLP(const MlpOptions& options, RngStream& rng);
  // x: (..., dim) -> (..., dim)
  Tensor forward(const Tensor& x) override;
  MlpOptions options;
  std::shared_ptr<Linear> fc1, fc2, fc3;  // fc3 only when gated
};

}  // namespace moelab::nn
