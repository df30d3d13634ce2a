#pragma once
// The basic layers: Linear, LayerNorm, Embedding, Conv2d, Dropout. Parameter names and layouts match
// PyTorch (Linear.weight is (out, in), Conv2d.weight is (O, C, kh, kw)), so state dicts carry over.
#include <cstdint>

#include "core/nn/init.h"
#include "core/nn/module.h"
#include "core/util/rng.h"

namespace moelab::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, RngStream& rng, const InitOptions& init = {},
         DType dtype = DType::f32);
  // x: (..., in) -> (..., out)
  Tensor forward(const Tensor& x) override;
  int64_t in_features, out_features;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true, DType dtype = DType::f32);
  // x: (..., dim) -> (..., dim)
  Tensor forward(const Tensor& x) override;
  int64_t dim;
  double eps;
  Tensor weight, bias;  // (dim) each, undefined without affine
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, RngStream& rng, const InitOptions& init = {},
            DType dtype = DType::f32);
  // ids: any shape, i32/i64 -> (*ids.shape, dim)
  Tensor forward(const Tensor& ids) override;
  int64_t num_embeddings, dim;
  Tensor weight;  // (num_embeddings, dim)
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride, int64_t padding, bool bias,
         RngStream& rng, const InitOptions& init = {}, DType dtype = DType::f32);
  // x: (B, C, H, W) -> (B, O, OH, OW)
  Tensor forward(const Tensor& x) override;
  int64_t in_channels, out_channels, kernel_size, stride, padding;
  Tensor weight;  // (O, C, k, k)
  Tensor bias;    // (O) or undefined
};

// Inverted dropout in training mode, identity in eval mode. Masks come from the forward context's stream
// for this module's path, so they depend on the seed, step and micro-batch only.
class Dropout : public Module {
 public:
  explicit Dropout(double p);
  Tensor forward(const Tensor& x, ForwardContext& ctx) override;
  using Module::forward;
  double p;
};

}  // namespace moelab::nn
