// The fused scaled_dot_product_attention against the composed form (matmul + masked softmax) on the same
// inputs, for every mask kind; queries that see no key; padding semantics by hand; thread-count
// determinism of the cpu kernels; errors for bad masks. The op table and the gradient table hold the
// per-backend and finite-difference checks.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "core/helpers_compare.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab {
namespace {

struct AttnCase {
  Shape q, k, v;
};
const AttnCase kCases[] = {{Shape{2, 3, 5, 4}, Shape{2, 3, 7, 4}, Shape{2, 3, 7, 3}},
                           {Shape{4, 2, 9, 1}, Shape{4, 2, 4, 1}, Shape{4, 2, 4, 2}},
                           {Shape{4, 1, 70, 6}, Shape{4, 1, 130, 6}, Shape{4, 1, 130, 5}}};

// (B, Tk) i64: item b % 4 = 0 all real, 1 the first half, 2 none, 3 every second key.
Tensor padding_pattern(int64_t B, int64_t Tk) {
  std::vector<int64_t> kp(static_cast<size_t>(B * Tk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < Tk; ++j) {
      int64_t pat = b % 4;
      kp[static_cast<size_t>(b * Tk + j)] = pat == 0 || (pat == 1 && j < (Tk + 1) / 2) || (pat == 3 && j % 2);
    }
  return Tensor::from_vector(kp, Shape{B, Tk});
}

struct Result {
  Tensor out, gq, gk, gv;
};

template <typename F>
Result run(F&& attend, const std::vector<Tensor>& qkv, const Tensor& upstream) {
  std::vector<Tensor> x;
  for (const Tensor& t : qkv) x.push_back(t.detach().clone().requires_grad_());
  Tensor out = attend(x[0], x[1], x[2]);
  out.backward(upstream);
  return {out.detach(), x[0].grad(), x[1].grad(), x[2].grad()};
}

class AttentionOnBackend : public ::testing::TestWithParam<BackendKind> {
 protected:
  BackendScope scope_{GetParam()};
};

TEST_P(AttentionOnBackend, FusedMatchesComposed) {
  RngStream rng(21, "attention");
  for (const AttnCase& c : kCases)
    for (int kind = 0; kind < 4; ++kind) {
      AttentionMask m;
      m.causal = kind & 1;
      if (kind & 2) m.key_padding = padding_pattern(c.q[0], c.k[2]);
      SCOPED_TRACE("q " + c.q.str() + " k " + c.k.str() + " causal " + std::to_string(m.causal) +
                   " padding " + std::to_string(m.key_padding.defined()));
      std::vector<Tensor> qkv = {rand_normal(c.q, 0, 1, rng, DType::f64),
                                 rand_normal(c.k, 0, 1, rng, DType::f64),
                                 rand_normal(c.v, 0, 1, rng, DType::f64)};
      Tensor up = rand_normal(Shape{c.q[0], c.q[1], c.q[2], c.v[3]}, 0, 1, rng, DType::f64);
      Result fused =
          run([&](auto& q, auto& k, auto& v) { return scaled_dot_product_attention(q, k, v, m); }, qkv, up);
      Result composed =
          run([&](auto& q, auto& k,
                  auto& v) { return detail::scaled_dot_product_attention_composed(q, k, v, m); },
              qkv, up);
      EXPECT_EQ(test::compare_tensors(fused.out, composed.out, 1e-24), "") << "output";
      EXPECT_EQ(test::compare_tensors(fused.gq, composed.gq, 1e-22), "") << "grad q";
      EXPECT_EQ(test::compare_tensors(fused.gk, composed.gk, 1e-22), "") << "grad k";
      EXPECT_EQ(test::compare_tensors(fused.gv, composed.gv, 1e-22), "") << "grad v";
      if (m.key_padding.defined() && c.q[0] > 2) {  // item 2 has no real key: zeros, exactly
        for (const Tensor& t : {fused.out, fused.gq, fused.gk, fused.gv})
          for (double x : t.slice(0, 2, 3).contiguous().to_vector<double>()) ASSERT_EQ(x, 0.0);
      }
    }
}

// Padding by hand: a padded key changes nothing for the other keys, whatever its values.
TEST_P(AttentionOnBackend, PaddedKeysAreIgnored) {
  RngStream rng(4, "padding");
  Tensor q = rand_normal(Shape{1, 2, 3, 4}, 0, 1, rng, DType::f64);
  Tensor k = rand_normal(Shape{1, 2, 5, 4}, 0, 1, rng, DType::f64);
  Tensor v = rand_normal(Shape{1, 2, 5, 3}, 0, 1, rng, DType::f64);
  AttentionMask m;
  m.key_padding = Tensor::from_vector<int32_t>({1, 1, 1, 0, 0}, Shape{1, 5});
  Tensor got = scaled_dot_product_attention(q, k, v, m);
  Tensor want = scaled_dot_product_attention(q.contiguous(), k.slice(2, 0, 3).contiguous(),
                                             v.slice(2, 0, 3).contiguous(), AttentionMask{}, 0.5);
  EXPECT_EQ(test::compare_tensors(got, want, 1e-28), "");
  // causal with a key cache (Tk - Tq = 2) and padding: query 0 sees keys 0..2, all real here
  m.causal = true;
  Tensor first = scaled_dot_product_attention(q, k, v, m).slice(2, 0, 1).contiguous();
  EXPECT_EQ(test::compare_tensors(first, want.slice(2, 0, 1).contiguous(), 1e-28), "");
}

TEST_P(AttentionOnBackend, BadMasksAreErrors) {
  Tensor q = Tensor::zeros(Shape{2, 1, 3, 4}), k = Tensor::zeros(Shape{2, 1, 5, 4}),
         v = Tensor::zeros(Shape{2, 1, 5, 4});
  auto message = [&](const Tensor& kp) {
    AttentionMask m;
    m.key_padding = kp;
    try {
      scaled_dot_product_attention(q, k, v, m);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(Tensor::ones(Shape{2, 4}, DType::i64)).find("key_padding must be (B, Tk) = (2, 5), got"),
            std::string::npos);
  EXPECT_NE(message(Tensor::ones(Shape{2, 5}, DType::f32)).find("key_padding must be i32 or i64"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Host, AttentionOnBackend, ::testing::Values(BackendKind::ref, BackendKind::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

// The cpu kernels give bitwise the same results for 1 and 2 threads: with one head the backward runs per
// key tile and then per query tile, with more heads than threads per head.
std::vector<std::vector<char>> attention_bytes(int64_t B, DType dt) {
  RngStream rng(8, "determinism");
  std::vector<Tensor> qkv = {rand_normal(Shape{B, 1, 150, 16}, 0, 1, rng, dt),
                             rand_normal(Shape{B, 1, 200, 16}, 0, 1, rng, dt),
                             rand_normal(Shape{B, 1, 200, 8}, 0, 1, rng, dt)};
  AttentionMask m;
  m.causal = true;
  m.key_padding = padding_pattern(B, 200);
  Result r = run([&](auto& q, auto& k, auto& v) { return scaled_dot_product_attention(q, k, v, m); }, qkv,
                 rand_normal(Shape{B, 1, 150, 8}, 0, 1, rng, dt));
  std::vector<std::vector<char>> bytes;
  for (const Tensor& t : {r.out, r.gq, r.gk, r.gv}) {
    Tensor c = t.contiguous();
    const char* p = static_cast<const char*>(c.raw_data());
    bytes.emplace_back(p, p + c.nbytes());
  }
  return bytes;
}

TEST(AttentionCpu, BitwiseSameForOneAndTwoThreads) {
  BackendScope scope(BackendKind::cpu);
  int prev = omp_get_max_threads();
  for (int64_t B : {1, 4})  // 1 and 4 heads
    for (DType dt : {DType::f32, DType::f64}) {
      omp_set_num_threads(1);
      auto one = attention_bytes(B, dt);
      omp_set_num_threads(2);
      auto two = attention_bytes(B, dt);
      const char* names[] = {"output", "grad q", "grad k", "grad v"};
      for (size_t i = 0; i < one.size(); ++i)
        EXPECT_TRUE(one[i] == two[i]) << names[i] << " differs, B " << B << " " << dtype_name(dt);
    }
  omp_set_num_threads(prev);
}

}  // namespace
}  // namespace moelab
