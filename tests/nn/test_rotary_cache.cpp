// Rotary positions and the key/value cache of core/nn/attention: rotary against a naive per-pair loop, its
// relative-position property, its backward against float64 finite differences; attention and a block fed
// one chunk at a time through the cache against the full forward (with and without padding).
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/helpers_grad.h"
#include "core/nn/attention.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"

using namespace moelab;
using namespace moelab::nn;

namespace {

AttentionOptions attention_options(int64_t dim, int64_t heads, bool causal, bool rotary, DType dtype = DType::f32) {
  AttentionOptions o;
  o.dim = dim;
  o.num_heads = heads;
  o.causal = causal;
  o.rotary = rotary;
  o.dtype = dtype;
  return o;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

TEST(Rotary, MatchesNaivePairRotation) {
  RngStream rng(3, "rotary");
  const int64_t B = 2, H = 3, T = 5, Dh = 8, first = 7;
  const double base = 100.0;
  Tensor x = rand_normal(Shape{B, H, T, Dh}, 0, 1, rng, DType::f64);
  const std::vector<double> in = x.to_vector<double>(), out = apply_rotary(x, first, base).to_vector<double>();
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < Dh / 2; ++i) {
        const double a = double(first + t) * std::pow(base, -2.0 * double(i) / double(Dh));
        const size_t row = static_cast<size_t>((bh * T + t) * Dh), lo = row + i, hi = row + i + Dh / 2;
        EXPECT_NEAR(out[lo], in[lo] * std::cos(a) - in[hi] * std::sin(a), 1e-12);
        EXPECT_NEAR(out[hi], in[hi] * std::cos(a) + in[lo] * std::sin(a), 1e-12);
      }
}

TEST(Rotary, ScoresDependOnRelativePositionOnly) {
  // <rot(q, m), rot(k, n)> = <rot(q, m + s), rot(k, n + s)>: what makes rotary a relative encoding.
  RngStream rng(4, "rotary");
  Tensor q = rand_normal(Shape{1, 1, 1, 16}, 0, 1, rng, DType::f64), k = rand_normal(Shape{1, 1, 1, 16}, 0, 1, rng, DType::f64);
  auto score = [&](int64_t m, int64_t n) { return sum(apply_rotary(q, m) * apply_rotary(k, n)).item(); };
  EXPECT_NEAR(score(3, 1), score(103, 101), 1e-9);
  EXPECT_NEAR(score(0, 5), score(40, 45), 1e-9);
  EXPECT_GT(std::abs(score(3, 1) - score(3, 2)), 1e-3);  // but it does change with the offset
}

TEST(Rotary, BackwardMatchesFiniteDifferences) {
  RngStream rng(5, "rotary");
  Tensor x = rand_normal(Shape{2, 2, 4, 6}, 0, 1, rng, DType::f64);
  // A permuted view, as attention passes its q and k.
  const std::string err = test::check_gradients(
      [](const std::vector<Tensor>& in) { return apply_rotary(in[0].permute({0, 2, 1, 3}), 3, 50.0); },
      {x.permute({0, 2, 1, 3}).contiguous()});
  EXPECT_EQ(err, "");
}

TEST(Rotary, AttentionBackwardMatchesFiniteDifferences) {
  RngStream rng(6, "rotary");
  AttentionOptions o = attention_options(8, 2, true, true, DType::f64);
  MultiHeadAttention attn(o, rng);
  Tensor x = rand_normal(Shape{2, 5, 8}, 0, 1, rng, DType::f64);
  const std::string err = test::check_gradients(
      [&](const std::vector<Tensor>& in) {
        ForwardContext ctx;
        return attn.forward(in[0], ctx);
      },
      {x});
  EXPECT_EQ(err, "");
}

// Feeds x (B, T, d) through `step` in chunks of the given sizes and concatenates the outputs.
template <typename F> Tensor chunked(const Tensor& x, const std::vector<int64_t>& sizes, F&& step) {
  std::vector<Tensor> outs;
  int64_t at = 0;
  for (int64_t n : sizes) {
    outs.push_back(step(x.slice(1, at, at + n), at, n));
    at += n;
  }
  EXPECT_EQ(at, x.size(1));
  return concat(outs, 1);
}

TEST(KVCache, AttentionChunksMatchFullForward) {
  for (bool rotary : {false, true}) {
    RngStream rng(7, "cache");
    AttentionOptions o = attention_options(12, 3, true, rotary);
    MultiHeadAttention attn(o, rng);
    Tensor x = rand_normal(Shape{2, 9, 12}, 0, 1, rng);
    NoGradGuard no_grad;
    ForwardContext full_ctx;
    Tensor full = attn.forward(x, full_ctx);
    KVCache cache;
    Tensor inc = chunked(x, {4, 1, 1, 3}, [&](const Tensor& part, int64_t, int64_t) {
      ForwardContext ctx;
      return attn.forward(part, ctx, &cache);
    });
    EXPECT_EQ(cache.length(), 9);
    EXPECT_LT(max_abs_diff(full, inc), 1e-5) << "rotary " << rotary;
  }
}

TEST(KVCache, PaddingMaskCarriesAcrossChunks) {
  RngStream rng(8, "cache");
  AttentionOptions o = attention_options(8, 2, true, true);
  MultiHeadAttention attn(o, rng);
  const int64_t B = 2, T = 6;
  Tensor x = rand_normal(Shape{B, T, 8}, 0, 1, rng);
  // Sequence 1 has padding at positions 1 and 2, which later queries must not see.
  const std::vector<int64_t> mask_v = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  Tensor mask = Tensor::from_vector(mask_v, Shape{B, T});
  NoGradGuard no_grad;
  Batch full_b;
  full_b.padding_mask = mask;
  ForwardContext full_ctx(full_b);
  Tensor full = attn.forward(x, full_ctx);
  KVCache cache;
  Tensor inc = chunked(x, {2, 3, 1}, [&](const Tensor& part, int64_t at, int64_t n) {
    Batch b;
    b.padding_mask = mask.slice(1, at, at + n).contiguous();
    ForwardContext ctx(b);
    return attn.forward(part, ctx, &cache);
  });
  // Rows of real queries agree (padded query rows are never read).
  for (int64_t t : {0, 3, 4, 5}) EXPECT_LT(max_abs_diff(full.slice(1, t, t + 1), inc.slice(1, t, t + 1)), 1e-5) << t;
  // And the padded keys really are hidden: changing them leaves sequence 1's real outputs unchanged.
  Tensor x2 = x.clone();
  {
    Tensor noise = rand_normal(Shape{1, 2, 8}, 0, 5, rng);
    x2 = concat({x.slice(0, 0, 1), concat({x.slice(0, 1, 2).slice(1, 0, 1), noise, x.slice(0, 1, 2).slice(1, 3, T)}, 1)}, 0);
  }
  ForwardContext ctx2(full_b);
  Tensor other = attn.forward(x2, ctx2);
  EXPECT_LT(max_abs_diff(full.slice(0, 1, 2).slice(1, 3, T), other.slice(0, 1, 2).slice(1, 3, T)), 1e-5);
}

TEST(KVCache, TransformerBlockChunksMatchFullForward) {
  RngStream rng(9, "cache");
  TransformerBlockOptions o;
  o.dim = 16;
  o.num_heads = 4;
  o.causal = true;
  o.rotary = true;
  TransformerBlock block(o, rng);
  Tensor x = rand_normal(Shape{3, 7, 16}, 0, 1, rng);
  NoGradGuard no_grad;
  ForwardContext full_ctx;
  Tensor full = block.forward(x, full_ctx);
  KVCache cache;
  Tensor inc = chunked(x, {3, 1, 1, 1, 1}, [&](const Tensor& part, int64_t, int64_t) {
    ForwardContext ctx;
    return block.forward(part, ctx, &cache);
  });
  EXPECT_LT(max_abs_diff(full, inc), 1e-5);
}

TEST(Rotary, RejectsOddHeadWidth) {
  RngStream rng(1, "rotary");
  AttentionOptions o = attention_options(6, 2, false, true);
  EXPECT_THROW(MultiHeadAttention(o, rng), Error);
  EXPECT_THROW(apply_rotary(Tensor::zeros(Shape{1, 1, 2, 3}), 0), Error);
}

}  // namespace
