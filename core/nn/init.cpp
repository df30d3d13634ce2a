// Parameter initializers (PyTorch defaults and the transformer normal / truncated-normal schemes).
#include "core/nn/init.h"

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::nn {

void uniform_(Tensor& t, double lo, double hi, RngStream& rng) {
  NoGradGuard ng;
  Tensor dst = t.detach();
  dst.copy_(rand_uniform(t.shape(), lo, hi, rng, t.dtype(), t.device()));
}

void normal_(Tensor& t, double mean, double std, RngStream& rng) {
  NoGradGuard ng;
  Tensor dst = t.detach();
  dst.copy_(rand_normal(t.shape(), mean, std, rng, t.dtype(), t.device()));
}

void trunc_normal_(Tensor& t, double mean, double std, double lo, double hi, RngStream& rng) {
  MOELAB_CHECK(lo < hi && std > 0, "trunc_normal_: needs lo < hi and std > 0, got [" << lo << ", " << hi
                                                                                     << "], std " << std);
  // Redraw out-of-range values (host draws from the stream, in element order: deterministic).
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (auto& x : v) {
    int tries = 0;
    do {
      x = mean + std * rng.normal();
      MOELAB_CHECK(++tries < 1000, "trunc_normal_: [" << lo << ", " << hi << "] is too far from mean " << mean);
    } while (x < lo || x > hi);
  }
  NoGradGuard ng;
  Tensor dst = t.detach();
  dst.copy_(Tensor::from_vector(v, t.shape()));
}

void kaiming_uniform_default_(Tensor& weight, int64_t fan_in, RngStream& rng) {
  // kaiming_uniform_(a = sqrt(5)): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3); bound = gain * sqrt(3 / fan_in).
  double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform_(weight, -bound, bound, rng);
}

Tensor init_weight(const Shape& shape, int64_t fan_in, const InitOptions& opt, RngStream& rng, DType dtype) {
  Tensor w = Tensor::empty(shape, dtype);
  switch (opt.scheme) {
    case InitScheme::torch_default: kaiming_uniform_default_(w, fan_in, rng); break;
    case InitScheme::normal: normal_(w, 0.0, opt.std, rng); break;
    case InitScheme::trunc_normal: trunc_normal_(w, 0.0, opt.std, -2 * opt.std, 2 * opt.std, rng); break;
  }
  return w;
}

Tensor init_bias(const Shape& shape, int64_t fan_in, const InitOptions& opt, RngStream& rng, DType dtype) {
  Tensor b = Tensor::zeros(shape, dtype);
  if (opt.scheme == InitScheme::torch_default) kaiming_uniform_default_(b, fan_in, rng);
  return b;
}

Tensor init_embedding(const Shape& shape, const InitOptions& opt, RngStream& rng, DType dtype) {
  Tensor w = Tensor::empty(shape, dtype);
  switch (opt.scheme) {
    case InitScheme::torch_default: normal_(w, 0.0, 1.0, rng); break;
    case InitScheme::normal: normal_(w, 0.0, opt.std, rng); break;
    case InitScheme::trunc_normal: trunc_normal_(w, 0.0, opt.std, -2 * opt.std, 2 * opt.std, rng); break;
  }
  return w;
}

}  // namespace moelab::nn
