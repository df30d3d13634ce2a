// Op semantics against known values (computed by hand or with PyTorch), so that the reference itself is
// checked, not only the agreement of backends: softmax family, layernorm, losses, indexing, top-k ties,
// conv2d, attention masking, random streams.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
Tensor vec(std::vector<double> v, Shape s) { return Tensor::from_vector(v, s); }
void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

class OpsOnBackend : public ::testing::TestWithParam<BackendKind> {
 protected:
  BackendScope scope_{GetParam()};
};

TEST_P(OpsOnBackend, SoftmaxFamilyValues) {
  Tensor x = vec({1, 2, 3}, Shape{3});
  expect_near(values(softmax(x)), {0.09003057, 0.24472847, 0.66524096});
  expect_near(values(log_softmax(x)), {-2.40760596, -1.40760596, -0.40760596});
  EXPECT_NEAR(logsumexp(x).item(), 3.40760596, 1e-8);
  // softmax over dim 0 of a (2, 2) matrix: columns sum to 1
  Tensor m = vec({0, 1, 2, 3}, Shape{2, 2});
  expect_near(values(softmax(m, 0)), {0.11920292, 0.11920292, 0.88079708, 0.88079708});
  expect_near(values(logsumexp(m, 1, true)), {1.31326169, 3.31326169});
  EXPECT_EQ(logsumexp(m, 1, true).shape(), (Shape{2, 1}));
  // infinities: all -inf -> -inf; +inf wins
  EXPECT_EQ(logsumexp(vec({-kInf, -kInf}, Shape{2})).item(), -kInf);
  EXPECT_EQ(logsumexp(vec({kInf, 0}, Shape{2})).item(), kInf);
  // large inputs do not overflow
  expect_near(values(softmax(vec({1000, 1000}, Shape{2}))), {0.5, 0.5});
}

TEST_P(OpsOnBackend, LayernormValues) {
  Tensor x = vec({1, 2, 3, 4}, Shape{1, 4});
  expect_near(values(layernorm(x, Tensor(), Tensor())), {-1.3416355, -0.4472118, 0.4472118, 1.3416355});
  Tensor y = layernorm(x, vec({1, 2, 1, 1}, Shape{4}), vec({0, 0, 0, 10}, Shape{4}));
  expect_near(values(y), {-1.3416355, -0.8944236, 0.4472118, 11.3416355});
}

TEST_P(OpsOnBackend, CrossEntropyValues) {
  Tensor logits = vec({1, 2, 3, 1, 1, 1}, Shape{2, 3});
  Tensor target = Tensor::from_vector<int64_t>({0, 2}, Shape{2});
  // row 0: lse 3.40760596 - 1; row 1: log 3
  EXPECT_NEAR(cross_entropy(logits, target).item(), (2.40760596 + 1.09861229) / 2, 1e-7);
  // smoothing 0.1: row 0 = lse - 0.9 * 1 - 0.1 / 3 * 6
  EXPECT_NEAR(cross_entropy(logits.slice(0, 0, 1), target.slice(0, 0, 1), 0.1).item(), 2.30760596, 1e-7);
  // ignored rows are left out of the mean; all ignored -> NaN (PyTorch)
  Tensor ignored = Tensor::from_vector<int64_t>({-100, 2}, Shape{2});
  EXPECT_NEAR(cross_entropy(logits, ignored).item(), 1.09861229, 1e-7);
  EXPECT_TRUE(std::isnan(cross_entropy(logits, Tensor::from_vector<int64_t>({5, 5}, Shape{2}), 0, 5).item()));
  // (B, T, C) logits with (B, T) targets
  Tensor l3 = logits.reshape(Shape{1, 2, 3});
  EXPECT_NEAR(cross_entropy(l3, target.reshape(Shape{1, 2})).item(), cross_entropy(logits, target).item(), 1e-12);
}

TEST_P(OpsOnBackend, RegressionLosses) {
  Tensor p = vec({0, 2, -3}, Shape{3}), t = vec({1, 0, 0}, Shape{3});
  EXPECT_NEAR(mse_loss(p, t).item(), (1 + 4 + 9) / 3.0, 1e-12);
  // huber, delta 1: 0.5*1, 1*(2-0.5), 1*(3-0.5)
  EXPECT_NEAR(huber_loss(p, t).item(), (0.5 + 1.5 + 2.5) / 3.0, 1e-12);
}

TEST_P(OpsOnBackend, IndexingValues) {
  Tensor x = vec({0, 1, 2, 3, 4, 5}, Shape{3, 2});
  Tensor idx = Tensor::from_vector<int64_t>({2, 0, 2}, Shape{3});
  EXPECT_EQ(values(index_select(x, idx)), (std::vector<double>{4, 5, 0, 1, 4, 5}));
  // repeated destinations accumulate
  EXPECT_EQ(values(index_add(x, idx, 4)), (std::vector<double>{2, 3, 0, 0, 4, 6, 0, 0}));
  Tensor w = vec({10, 11, 20, 21, 30, 31}, Shape{3, 2});
  Tensor ids = Tensor::from_vector<int32_t>({1, 1, 0, 2}, Shape{2, 2});
  Tensor e = embedding(w, ids);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(values(e), (std::vector<double>{20, 21, 20, 21, 10, 11, 30, 31}));
  // PyTorch's gather example: t = [[1, 2], [3, 4]], index [[0, 0], [1, 0]] along dim 1 -> [[1, 1], [4, 3]]
  Tensor t = vec({1, 2, 3, 4}, Shape{2, 2});
  Tensor gi = Tensor::from_vector<int64_t>({0, 0, 1, 0}, Shape{2, 2});
  EXPECT_EQ(values(gather(t, 1, gi)), (std::vector<double>{1, 1, 4, 3}));
  // scatter_add along dim 0: base zeros (2, 3), src ones (2, 3), index [[0, 1, 0], [0, 0, 1]]
  Tensor si = Tensor::from_vector<int64_t>({0, 1, 0, 0, 0, 1}, Shape{2, 3});
  Tensor s = scatter_add(Tensor::zeros(Shape{2, 3}, DType::f64), 0, si, Tensor::ones(Shape{2, 3}, DType::f64));
  EXPECT_EQ(values(s), (std::vector<double>{2, 1, 1, 0, 1, 1}));
}

TEST_P(OpsOnBackend, TopkTiesGoToTheLowerIndex) {
  Tensor x = vec({1, 3, 3, 2, -1, 3}, Shape{1, 6});
  Tensor idx;
  Tensor v = topk(x, 3, &idx);
  EXPECT_EQ(values(v), (std::vector<double>{3, 3, 3}));
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 5}));
  EXPECT_EQ(idx.dtype(), DType::i64);
  topk(vec({0.5, std::nan(""), 2}, Shape{3}), 2, &idx);
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));  // NaN ranks first (PyTorch)
}

TEST_P(OpsOnBackend, Conv2dValues) {
  Tensor x = Tensor::arange(16, DType::f64).reshape(Shape{1, 1, 4, 4});
  Tensor w = Tensor::ones(Shape{1, 1, 2, 2}, DType::f64);
  EXPECT_EQ(values(conv2d(x, w, Tensor(), 2, 0)), (std::vector<double>{10, 18, 42, 50}));
  // padding 1, stride 3 with a bias: corners see one pixel each
  Tensor y = conv2d(x, w, vec({100}, Shape{1}), 3, 1);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(values(y), (std::vector<double>{100, 100 + 2 + 3, 100 + 8 + 12, 100 + 10 + 11 + 14 + 15}));
  std::string m;
  try {
    conv2d(x, Tensor::ones(Shape{1, 2, 2, 2}, DType::f64), Tensor());
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("weight must be (O, 1, kh, kw)"), std::string::npos) << m;
}

TEST_P(OpsOnBackend, AttentionMasking) {
  RngStream rng(5, "attn");
  Tensor q = rand_normal(Shape{1, 2, 3, 4}, 0, 1, rng, DType::f64), k = rand_normal(Shape{1, 2, 3, 4}, 0, 1, rng, DType::f64);
  Tensor v = rand_normal(Shape{1, 2, 3, 5}, 0, 1, rng, DType::f64);
  Tensor out = scaled_dot_product_attention(q, k, v, true);
  // the first query sees only the first key: its output is v's first row
  expect_near(values(out.slice(2, 0, 1)), values(v.slice(2, 0, 1)), 1e-12);
  // the unmasked form equals softmax(q k^T / sqrt(d)) v written out
  Tensor ref = matmul(softmax(mul(matmul(q, k.transpose(-1, -2)), 0.5), -1), v);
  expect_near(values(scaled_dot_product_attention(q, k, v, false)), values(ref), 1e-12);
  // keys beyond the queries (a key cache): query i sees keys j <= i + 2
  Tensor k5 = rand_normal(Shape{1, 2, 5, 4}, 0, 1, rng, DType::f64), v5 = rand_normal(Shape{1, 2, 5, 5}, 0, 1, rng, DType::f64);
  Tensor last = scaled_dot_product_attention(q, k5, v5, true).slice(2, 2, 3);
  Tensor full = scaled_dot_product_attention(q, k5, v5, false).slice(2, 2, 3);
  expect_near(values(last), values(full), 1e-12);
}

TEST_P(OpsOnBackend, RandomStreams) {
  RngStream a(1, "x"), b(1, "x");
  Tensor u = rand_uniform(Shape{10000}, -1, 3, a);
  EXPECT_EQ(a.counter(), 10000u);
  EXPECT_EQ(values(u), values(rand_uniform(Shape{10000}, -1, 3, b)));  // same stream, same numbers
  double mn = 1e9, mx = -1e9, avg = 0;
  for (double x : values(u)) {
    mn = std::min(mn, x);
    mx = std::max(mx, x);
    avg += x / 10000;
  }
  EXPECT_GE(mn, -1);
  EXPECT_LT(mx, 3);
  EXPECT_NEAR(avg, 1.0, 0.05);
  Tensor n = rand_normal(Shape{10000}, 2, 0.5, a, DType::f64);
  EXPECT_NEAR(mean(n).item(), 2.0, 0.02);
  EXPECT_NEAR(std::sqrt(mean(square(add(n, -2.0))).item()), 0.5, 0.02);
  // the next draw continues the stream: different numbers
  RngStream c(1, "x");
  Tensor first = rand_uniform(Shape{4}, 0, 1, c);
  EXPECT_NE(values(first), values(rand_uniform(Shape{4}, 0, 1, c)));
}

TEST_P(OpsOnBackend, DropoutScalesAndIsIdentityInEval) {
  RngStream rng(2, "dropout");
  Tensor x = Tensor::ones(Shape{20000});
  Tensor y = dropout(x, 0.25, true, rng);
  int64_t kept = 0;
  for (double v : values(y)) {
    EXPECT_TRUE(v == 0 || std::abs(v - 1 / 0.75) < 1e-6) << v;
    kept += v != 0;
  }
  EXPECT_NEAR(kept / 20000.0, 0.75, 0.02);
  uint64_t before = rng.counter();
  EXPECT_TRUE(dropout(x, 0.25, false, rng).same_storage(x));
  EXPECT_EQ(rng.counter(), before);  // no draws in eval mode
  EXPECT_EQ(values(dropout(x, 1.0, true, rng)), std::vector<double>(20000, 0.0));
}

INSTANTIATE_TEST_SUITE_P(Host, OpsOnBackend, ::testing::Values(BackendKind::ref, BackendKind::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace moelab
