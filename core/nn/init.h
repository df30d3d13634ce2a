#pragma once
// Parameter initialization from an RngStream (Philox draws: the same on every backend): PyTorch's
// defaults and the GPT-2 / ViT normal schemes. What each scheme draws: docs/nn.md (Initialization).
#include <cstdint>

#include "core/tensor/tensor.h"
#include "core/util/rng.h"

namespace moelab::nn {

enum class InitScheme : uint8_t { torch_default, normal, trunc_normal };

struct InitOptions {
  InitScheme scheme = InitScheme::torch_default;
  double std = 0.02;  // for normal / trunc_normal
};

// In-place fills (no autograd); t is contiguous f32/f64 on any device.
void uniform_(Tensor& t, double lo, double hi, RngStream& rng);
void normal_(Tensor& t, double mean, double std, RngStream& rng);
// N(mean, std) restricted to [lo, hi] by redrawing out-of-range values (PyTorch's trunc_normal_ law).
void trunc_normal_(Tensor& t, double mean, double std, double lo, double hi, RngStream& rng);
// PyTorch's kaiming_uniform_(a = sqrt(5)) for a weight of fan_in inputs: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void kaiming_uniform_default_(Tensor& weight, int64_t fan_in, RngStream& rng);

// A weight (Linear, Conv2d) / bias / embedding table initialized by `opt`.
Tensor init_weight(const Shape& shape, int64_t fan_in, const InitOptions& opt, RngStream& rng, DType dtype);
Tensor init_bias(const Shape& shape, int64_t fan_in, const InitOptions& opt, RngStream& rng, DType dtype);
Tensor init_embedding(const Shape& shape, const InitOptions& opt, RngStream& rng, DType dtype);

}  // namespace moelab::nn
