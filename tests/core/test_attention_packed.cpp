// attention_packed_qkv against the unpacked composition (head-layout views of qkv, the fused attention op,
// heads merged by transpose + reshape) on the ref and cpu backends, forward and every gradient, with
// causal and key-padding masks; float64 central differences; shape errors.
#include <gtest/gtest.h>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"
#include "helpers_compare.h"
#include "helpers_grad.h"

using namespace moelab;

namespace {

// The unpacked reference: what MultiHeadAttention did before the packed op.
Tensor unpacked(const Tensor& qkv, int64_t H, const AttentionMask& mask) {
  const int64_t B = qkv.size(0), T = qkv.size(1), d = qkv.size(2) / 3;
  Tensor heads = qkv.reshape(Shape{B, T, 3, H, d / H}).permute({2, 0, 3, 1, 4});
  Tensor o = scaled_dot_product_attention(heads.select(0, 0), heads.select(0, 1), heads.select(0, 2), mask);
  return o.transpose(1, 2).reshape(Shape{B, T, d});
}

struct Case {
  int64_t B, T, H, Dh;
  bool causal, padded;
};

AttentionMask mask_of(const Case& c) {
  AttentionMask m;
  m.causal = c.causal;
  if (c.padded) {  // the last key of every sequence but the first is padding; sequence 0 is whole
    std::vector<int32_t> kp(static_cast<size_t>(c.B * c.T), 1);
    for (int64_t b = 1; b < c.B; ++b) kp[static_cast<size_t>(b * c.T + c.T - 1)] = 0;
    m.key_padding = Tensor::from_vector(kp, Shape{c.B, c.T});
  }
  return m;
}

const Case kCases[] = {{2, 5, 2, 3, false, false}, {2, 7, 3, 4, true, false}, {3, 6, 2, 4, false, true},
                       {2, 9, 2, 2, true, true}, {1, 70, 2, 8, true, false}};

}  // namespace

TEST(AttentionPacked, EqualsTheUnpackedFormOnRefAndCpu) {
  for (BackendKind kind : {BackendKind::ref, BackendKind::cpu})
    for (DType dt : {DType::f32, DType::f64})
      for (const Case& c : kCases) {
        BackendScope scope(kind);
        RngStream rng(5, "packed");
        const int64_t d = c.H * c.Dh;
        Tensor base = rand_normal(Shape{c.B, c.T, 3 * d}, 0, 1, rng, dt);
        Tensor g = rand_normal(Shape{c.B, c.T, d}, 0, 1, rng, dt);
        AttentionMask m = mask_of(c);
        Tensor x1 = base.clone().requires_grad_(), x2 = base.clone().requires_grad_();
        Tensor y1 = attention_packed_qkv(x1, c.H, m), y2 = unpacked(x2, c.H, m);
        ASSERT_EQ(y1.shape(), (Shape{c.B, c.T, d}));
        y1.backward(g);
        y2.backward(g);
        const double tol = dt == DType::f64 ? 1e-24 : 1e-12;
        std::string what = std::string(kind == BackendKind::ref ? "ref" : "cpu") + " " +
                           std::string(dtype_name(dt)) + " T=" + std::to_string(c.T);
        EXPECT_EQ(test::compare_tensors(y1, y2, tol), "") << what;
        EXPECT_EQ(test::compare_tensors(x1.grad(), x2.grad(), tol), "") << what;
      }
}

TEST(AttentionPacked, GradientMatchesFiniteDifferences) {
  for (BackendKind kind : {BackendKind::ref, BackendKind::cpu})
    for (const Case& c : {Case{2, 4, 2, 2, true, false}, Case{2, 5, 2, 3, false, true}}) {
      BackendScope scope(kind);
      RngStream rng(6, "packed_fd");
      Tensor qkv = rand_normal(Shape{c.B, c.T, 3 * c.H * c.Dh}, 0, 1, rng, DType::f64);
      AttentionMask m = mask_of(c);
      std::string err = test::check_gradients(
          [&](const std::vector<Tensor>& in) { return attention_packed_qkv(in[0], c.H, m); }, {qkv}, 1e-6);
      EXPECT_EQ(err, "") << (kind == BackendKind::ref ? "ref" : "cpu");
    }
}

TEST(AttentionPacked, ShapeErrorsSayWhatIsWrong) {
  Tensor bad_rank = Tensor::zeros(Shape{4, 12});
  Tensor bad_width = Tensor::zeros(Shape{1, 4, 14});
  try {
    attention_packed_qkv(bad_rank, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be (B, T, 3 d)"), std::string::npos) << e.what();
  }
  try {
    attention_packed_qkv(bad_width, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not 3 x heads (2)"), std::string::npos) << e.what();
  }
}
