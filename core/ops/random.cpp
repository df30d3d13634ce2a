// Random ops: uniform and normal tensors and dropout, drawn from an RngStream. Each call reserves
// numel counters of the stream (RngStream::advance), so element i of a draw is Philox(key, offset + i)
// on every backend and thread count.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab {

Tensor rand_uniform(const Shape& shape, double lo, double hi, RngStream& rng, DType dtype, Device device) {
  MOELAB_CHECK(is_floating(dtype), "rand_uniform needs a float dtype, got " << dtype_name(dtype));
  MOELAB_CHECK(lo <= hi, "rand_uniform: lo " << lo << " > hi " << hi);
  Tensor out = Tensor::empty(shape, dtype, device);
  uint64_t offset = rng.advance(static_cast<uint64_t>(out.numel()));
  if (out.numel() > 0) backend_for(device).random_uniform(out, rng.key(), offset, lo, hi);
  return out;
}

Tensor rand_normal(const Shape& shape, double mean, double std, RngStream& rng, DType dtype, Device device) {
  MOELAB_CHECK(is_floating(dtype), "rand_normal needs a float dtype, got " << dtype_name(dtype));
  MOELAB_CHECK(std >= 0, "rand_normal: std must be >= 0, got " << std);
  Tensor out = Tensor::empty(shape, dtype, device);
  uint64_t offset = rng.advance(static_cast<uint64_t>(out.numel()));
  if (out.numel() > 0) backend_for(device).random_normal(out, rng.key(), offset, mean, std);
  return out;
}

// Inverted dropout: y = x * mask, mask_i = 1/(1-p) with probability 1-p, else 0. Identity when not training
// or p == 0 (no draws are made then).
Tensor dropout(const Tensor& x, double p, bool training, RngStream& rng) {
  detail::check_float(x, "dropout");
  MOELAB_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got " << p);
  if (!training || p == 0) return x;
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  uint64_t offset = rng.advance(static_cast<uint64_t>(mask.numel()));
  if (mask.numel() > 0) backend_for(x.device()).dropout_mask(mask, rng.key(), offset, p);
  return mul(x, mask);
}

}  // namespace moelab
