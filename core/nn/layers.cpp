// Linear, LayerNorm, Embedding, Conv2d, Dropout.
#include "core/nn/layers.h"

#include "core/ops/ops.h"

namespace moelab::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias, RngStream& rng, const InitOptions& init, DType dtype)
    : Module("Linear"), in_features(in), out_features(out) {
  MOELAB_CHECK(in > 0 && out > 0, "Linear(" << in << ", " << out << "): sizes must be positive");
  weight = register_parameter("weight", init_weight(Shape{out, in}, in, init, rng, dtype));
  if (has_bias) bias = register_parameter("bias", init_bias(Shape{out}, in, init, rng, dtype));
}

Tensor Linear::forward(const Tensor& x) {
  MOELAB_CHECK(x.dim() >= 1 && x.size(-1) == in_features,
               "Linear(" << in_features << " -> " << out_features << "): input " << x.shape().str()
                         << " does not end in " << in_features);
  return linear(x, weight, bias);
}

LayerNorm::LayerNorm(int64_t d, double e, bool affine, DType dtype) : Module("LayerNorm"), dim(d), eps(e) {
  MOELAB_CHECK(d > 0, "LayerNorm(" << d << "): size must be positive");
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(Shape{d}, dtype));
    bias = register_parameter("bias", Tensor::zeros(Shape{d}, dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  MOELAB_CHECK(x.dim() >= 1 && x.size(-1) == dim,
               "LayerNorm(" << dim << "): input " << x.shape().str() << " does not end in " << dim);
  return layernorm(x, weight, bias, eps);
}

Embedding::Embedding(int64_t n, int64_t d, RngStream& rng, const InitOptions& init, DType dtype)
    : Module("Embedding"), num_embeddings(n), dim(d) {
  MOELAB_CHECK(n > 0 && d > 0, "Embedding(" << n << ", " << d << "): sizes must be positive");
  weight = register_parameter("weight", init_embedding(Shape{n, d}, init, rng, dtype));
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids); }

Conv2d::Conv2d(int64_t in_c, int64_t out_c, int64_t k, int64_t s, int64_t p, bool has_bias, RngStream& rng,
               const InitOptions& init, DType dtype)
    : Module("Conv2d"), in_channels(in_c), out_channels(out_c), kernel_size(k), stride(s), padding(p) {
  MOELAB_CHECK(in_c > 0 && out_c > 0 && k > 0 && s > 0 && p >= 0,
               "Conv2d(" << in_c << ", " << out_c << ", k=" << k << ", stride=" << s << ", pad=" << p
                         << "): invalid sizes");
  int64_t fan_in = in_c * k * k;
  weight = register_parameter("weight", init_weight(Shape{out_c, in_c, k, k}, fan_in, init, rng, dtype));
  if (has_bias) bias = register_parameter("bias", init_bias(Shape{out_c}, fan_in, init, rng, dtype));
}

Tensor Conv2d::forward(const Tensor& x) {
  MOELAB_CHECK(x.dim() == 4 && x.size(1) == in_channels,
               "Conv2d(" << in_channels << " -> " << out_channels << "): input " << x.shape().str()
                         << " is not (B, " << in_channels << ", H, W)");
  return conv2d(x, weight, bias, stride, padding);
}

Dropout::Dropout(double prob) : Module("Dropout"), p(prob) {
  MOELAB_CHECK(prob >= 0 && prob < 1, "Dropout(p=" << prob << "): p must be in [0, 1)");
}

Tensor Dropout::forward(const Tensor& x, ForwardContext& ctx) {
  return p > 0 && is_training() ? dropout(x, p, true, ctx.rng(*this)) : x;
}

}  // namespace moelab::nn
