// Tensor basics: creation, views sharing storage, contiguous copies, dtype casts, element access, the
// backend scope, error messages, and autograd fundamentals.
#include <gtest/gtest.h>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab {
namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// The message of the moelab::Error thrown by f ("" if none is thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor iota(const Shape& s, DType t = DType::f32) {
  std::vector<double> v(static_cast<size_t>(numel_of(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return Tensor::from_vector(v, s).to(t);
}

TEST(TensorCreate, FactoriesFillShapeAndDtype) {
  Tensor z = Tensor::zeros(Shape{2, 3}, DType::f64);
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), DType::f64);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(values(z), std::vector<double>(6, 0.0));
  EXPECT_EQ(values(Tensor::ones(Shape{3}, DType::i32)), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(values(Tensor::full(Shape{2}, -2.5)), (std::vector<double>{-2.5, -2.5}));
  Tensor s = Tensor::scalar(4.0, DType::i64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 4.0);
  EXPECT_EQ(Tensor::arange(4).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(Tensor::from_vector<int32_t>({7, 8}, Shape{2, 1}).to_vector<int32_t>(),
            (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(Tensor::empty(Shape{0, 4}).numel(), 0);
  EXPECT_EQ(Tensor::empty(Shape{2, 3}).strides(), (Strides{3, 1}));
}

TEST(TensorViews, ShareStorageAndReadRight) {
  Tensor x = iota(Shape{2, 3, 4});
  Tensor r = x.reshape(Shape{6, 4});
  EXPECT_TRUE(r.same_storage(x));
  EXPECT_EQ(values(r), values(x));

  Tensor t = x.transpose(0, 2);  // (4, 3, 2)
  EXPECT_TRUE(t.same_storage(x));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Strides{1, 4, 12}));
  // t[i, j, k] = x[k, j, i] = k*12 + j*4 + i
  EXPECT_EQ(values(t)[0 * 6 + 1 * 2 + 1], 1 * 12 + 1 * 4 + 0);
  EXPECT_EQ(values(t)[3 * 6 + 2 * 2 + 0], 0 * 12 + 2 * 4 + 3);

  Tensor p = x.permute({1, 2, 0});  // (3, 4, 2): p[j, k, i] = x[i, j, k]
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  EXPECT_EQ(values(p)[(2 * 4 + 3) * 2 + 1], 1 * 12 + 2 * 4 + 3);

  Tensor s = x.slice(2, 1, 4, 2);  // k in {1, 3}
  EXPECT_TRUE(s.same_storage(x));
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(values(s), (std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  EXPECT_EQ(values(x.slice(0, -1, 2)), values(x.select(0, 1).reshape(Shape{1, 3, 4})));

  Tensor sel = x.select(1, 2);  // (2, 4): x[i, 2, k]
  EXPECT_EQ(values(sel), (std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23}));
}

TEST(TensorViews, ExpandUnsqueezeSqueeze) {
  Tensor v = iota(Shape{3});
  Tensor u = v.unsqueeze(0);
  EXPECT_EQ(u.shape(), (Shape{1, 3}));
  Tensor e = u.expand(Shape{2, 3});
  EXPECT_TRUE(e.same_storage(v));
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(values(e), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(v.unsqueeze(-1).shape(), (Shape{3, 1}));
  EXPECT_EQ(u.squeeze(0).shape(), (Shape{3}));
  EXPECT_EQ(u.squeeze(1).shape(), (Shape{1, 3}));  // size 3: unchanged
  EXPECT_EQ(Tensor::scalar(2).expand(Shape{2, 2}).shape(), (Shape{2, 2}));
  EXPECT_EQ(u.expand(Shape{4, -1}).shape(), (Shape{4, 3}));  // -1 keeps the size
}

TEST(TensorViews, WritesThroughAViewReachTheBase) {
  Tensor x = Tensor::zeros(Shape{3, 4});
  Tensor col = x.slice(1, 1, 2);
  col.fill_(5);
  x.select(0, 2).copy_(Tensor::ones(Shape{4}));
  EXPECT_EQ(values(x), (std::vector<double>{0, 5, 0, 0, 0, 5, 0, 0, 1, 1, 1, 1}));
}

TEST(TensorContiguous, CopiesOnlyWhenNeeded) {
  Tensor x = iota(Shape{3, 4});
  Tensor c = x.contiguous();
  EXPECT_TRUE(c.same_storage(x));
  Tensor t = x.t();
  Tensor tc = t.contiguous();
  EXPECT_FALSE(tc.same_storage(x));
  EXPECT_TRUE(tc.is_contiguous());
  EXPECT_EQ(values(tc), (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // reshape of a non-contiguous tensor copies; view() refuses
  EXPECT_FALSE(t.reshape(Shape{12}).same_storage(x));
  EXPECT_NE(error_of([&] { t.view(Shape{12}); }).find("use reshape()"), std::string::npos);
  // a transposed pair of size-1 dims is still contiguous
  EXPECT_TRUE(iota(Shape{1, 1, 5}).transpose(0, 1).is_contiguous());
}

TEST(TensorDtype, CastsConvertValues) {
  Tensor x = Tensor::from_vector<double>({-1.75, 0.5, 2.25}, Shape{3});
  EXPECT_EQ(x.to(DType::f32).dtype(), DType::f32);
  EXPECT_EQ(values(x.to(DType::f32)), (std::vector<double>{-1.75, 0.5, 2.25}));
  EXPECT_EQ(x.to(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{-1, 0, 2}));  // truncation
  EXPECT_EQ(x.to(DType::i64).to(DType::f64).to_vector<double>(), (std::vector<double>{-1, 0, 2}));
  EXPECT_EQ(x.to(DType::f64).same_storage(x), true);  // same dtype: no copy
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{-1.75f, 0.5f, 2.25f}));
  EXPECT_NE(error_of([&] { x.data<float>(); }).find("tensor holds f64, accessed as f32"), std::string::npos);
}

TEST(TensorAccess, ItemToVectorClone) {
  Tensor x = iota(Shape{2, 2});
  EXPECT_EQ(x.select(0, 1).select(0, 1).item(), 3.0);
  EXPECT_NE(error_of([&] { x.item(); }).find("single-element"), std::string::npos);
  Tensor c = x.clone();
  EXPECT_FALSE(c.same_storage(x));
  c.fill_(0);
  EXPECT_EQ(values(x), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_NE(x.str().find("Tensor(2, 2) f32 cpu [0, 1, 2, 3]"), std::string::npos) << x.str();
}

TEST(TensorBackend, ScopeSelectsHostBackendAndRestores) {
  EXPECT_EQ(host_backend().kind(), BackendKind::cpu);
  {
    BackendScope ref(BackendKind::ref);
    EXPECT_EQ(host_backend().kind(), BackendKind::ref);
    {
      BackendScope cpu(BackendKind::cpu);
      EXPECT_EQ(host_backend().kind(), BackendKind::cpu);
    }
    EXPECT_EQ(host_backend().kind(), BackendKind::ref);
    // ops run on the scoped backend and agree with cpu
    EXPECT_EQ(values(add(iota(Shape{3}), 1.0)), (std::vector<double>{1, 2, 3}));
  }
  EXPECT_EQ(host_backend().kind(), BackendKind::cpu);
  EXPECT_NE(error_of([] { BackendScope s(BackendKind::cuda); }).find("not cuda"), std::string::npos);
  EXPECT_STREQ(backend_for(Device::cpu()).name(), "cpu");
}

TEST(TensorBackend, CudaWithoutDeviceSaysSo) {
  if (cuda_backend().available()) GTEST_SKIP() << "a CUDA device is present";
  std::string m = error_of([] { Tensor::zeros(Shape{2}, DType::f32, Device::cuda()); });
  EXPECT_FALSE(m.empty());
  EXPECT_NE(m.find("cuda"), std::string::npos) << m;
}

TEST(TensorErrors, MessagesSayWhatIsWrong) {
  Tensor x = iota(Shape{2, 3});
  std::string m = error_of([&] { x.reshape(Shape{4, 2}); });
  EXPECT_NE(m.find("reshape: shape (4, 2) does not hold 6 elements"), std::string::npos) << m;
  m = error_of([&] { x.reshape(Shape{-1, -1}); });
  EXPECT_NE(m.find("only one dimension can be -1"), std::string::npos) << m;
  m = error_of([&] { add(x, iota(Shape{4})); });
  EXPECT_NE(m.find("add: shapes (2, 3) and (4,) cannot be broadcast"), std::string::npos) << m;
  m = error_of([&] { add(x, iota(Shape{2, 3}, DType::f64)); });
  EXPECT_NE(m.find("add: dtype mismatch (f32 and f64)"), std::string::npos) << m;
  m = error_of([&] { matmul(x, iota(Shape{2, 2})); });
  EXPECT_NE(m.find("matmul: inner dimensions differ: (2, 3) @ (2, 2)"), std::string::npos) << m;
  m = error_of([&] { x.transpose(0, 2); });
  EXPECT_NE(m.find("dim 2 out of range for a 2-d tensor"), std::string::npos) << m;
  m = error_of([&] { x.expand(Shape{4, 3}); });
  EXPECT_NE(m.find("cannot expand (2, 3) to (4, 3)"), std::string::npos) << m;
  m = error_of([&] { Tensor::from_vector<float>({1, 2}, Shape{3}); });
  EXPECT_NE(m.find("2 values for shape (3,)"), std::string::npos) << m;
  m = error_of([&] { index_select(x, Tensor::from_vector<int64_t>({0, 5}, Shape{2})); });
  EXPECT_NE(m.find("index 5 at position 1 is out of range [0, 2)"), std::string::npos) << m;
  m = error_of([&] { cross_entropy(x, Tensor::from_vector<int64_t>({1, 3}, Shape{2})); });
  EXPECT_NE(m.find("target 3 at row 1 is not a class in [0, 3)"), std::string::npos) << m;
  m = error_of([&] { softmax(Tensor::arange(3)); });
  EXPECT_NE(m.find("softmax needs a float tensor, got i64"), std::string::npos) << m;
  m = error_of([&] { Tensor::arange(3).requires_grad_(); });
  EXPECT_NE(m.find("only float tensors can require grad"), std::string::npos) << m;
  // every message starts with the file:line of the check
  EXPECT_NE(m.find(".cpp:"), std::string::npos) << m;
}

// ---- autograd ----

TEST(Autograd, LeafAndNonLeaf) {
  Tensor a = iota(Shape{3}).requires_grad_();
  Tensor b = mul(a, 2.0);
  EXPECT_TRUE(a.is_leaf());
  EXPECT_FALSE(b.is_leaf());
  EXPECT_TRUE(b.requires_grad());
  EXPECT_STREQ(b.grad_fn()->op, "mul_scalar");
  Tensor c = iota(Shape{3});
  EXPECT_FALSE(add(c, 1.0).requires_grad());  // nothing to record
  sum(b).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{2, 2, 2}));
  EXPECT_FALSE(b.grad().defined());  // non-leaf gradients are not kept
  EXPECT_FALSE(b.detach().requires_grad());
  EXPECT_TRUE(b.detach().same_storage(b));
}

TEST(Autograd, AccumulatesOverTwoBackwardCalls) {
  Tensor a = Tensor::from_vector<float>({1, 2}, Shape{2}).requires_grad_();
  sum(mul(a, a)).backward();    // 2a
  sum(mul(a, 3.0)).backward();  // + 3
  EXPECT_EQ(values(a.grad()), (std::vector<double>{5, 7}));
  a.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  sum(a).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 1}));
}

TEST(Autograd, InputUsedTwiceGetsBothContributions) {
  Tensor a = Tensor::from_vector<double>({3}, Shape{1}).requires_grad_();
  Tensor y = mul(add(a, 1.0), a);  // a^2 + a -> 2a + 1
  y.backward(Tensor::ones(Shape{1}, DType::f64));
  EXPECT_EQ(a.grad().item(), 7.0);
}

TEST(Autograd, NoGradScope) {
  Tensor a = iota(Shape{2}).requires_grad_();
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    Tensor y = mul(a, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_NE(error_of([&] { y.backward(Tensor::ones(Shape{2})); }).find("does not require grad"),
              std::string::npos);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(mul(a, 2.0).requires_grad());
}

TEST(Autograd, GradientFlowsThroughViews) {
  Tensor x = iota(Shape{2, 3}).requires_grad_();
  // y = sum(x^T[1:, :] * w) over a transposed, sliced, reshaped view
  Tensor v = x.t().slice(0, 1, 3).reshape(Shape{4});
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 4}, Shape{4});
  sum(mul(v, w)).backward();
  // v = [x01, x11, x02, x12]
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 3, 0, 2, 4}));
  x.zero_grad();
  sum(x.select(1, 0).unsqueeze(0).expand(Shape{3, 2})).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3, 0, 0, 3, 0, 0}));
}

TEST(Autograd, BackwardNeedsScalarOrGradient) {
  Tensor x = iota(Shape{2}).requires_grad_();
  Tensor y = mul(x, 2.0);
  EXPECT_NE(error_of([&] { y.backward(); }).find("needs a scalar"), std::string::npos);
  EXPECT_NE(error_of([&] { y.backward(Tensor::ones(Shape{3})); }).find("gradient shape (3,) != (2,)"),
            std::string::npos);
  // a leaf's own backward stores a copy of the gradient
  Tensor g = Tensor::ones(Shape{2});
  x.backward(g);
  g.fill_(5);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1}));
}

}  // namespace
}  // namespace moelab
