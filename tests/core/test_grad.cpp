// Every op with a backward: float64 central differences vs backward() (docs/architecture.md §5), on the ref
// and cpu backends, and on cuda when a device is present (GradCuda.Present says when it was skipped).
// Inputs keep away from kinks (ReLU at 0, Huber at +-delta, max and top-k ties).
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "core/backend/backend.h"
#include "core/helpers_grad.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab {
namespace {

using test::check_gradients;

// Deterministic float64 inputs.
class Inputs {
 public:
  explicit Inputs(uint64_t seed) : rng_(seed, "grad") {}
  Tensor normal(const Shape& s, double scale = 1.0) {
    std::vector<double> v(static_cast<size_t>(numel_of(s)));
    for (double& x : v) x = scale * rng_.normal();
    return Tensor::from_vector(v, s);
  }
  Tensor uniform(const Shape& s, double lo, double hi) {
    std::vector<double> v(static_cast<size_t>(numel_of(s)));
    for (double& x : v) x = lo + (hi - lo) * rng_.uniform();
    return Tensor::from_vector(v, s);
  }
  // Uniform in [-2, 2] keeping |x - k| >= 0.1 for each kink k.
  Tensor away_from(const Shape& s, std::vector<double> kinks) {
    std::vector<double> v = uniform(s, -2, 2).to_vector<double>();
    for (double& x : v)
      for (double k : kinks)
        if (std::abs(x - k) < 0.1) x = x < k ? k - 0.1 : k + 0.1;
    return Tensor::from_vector(v, s);
  }
  // Distinct values spaced at least 0.05 apart (no ties for max / top-k), in random order.
  Tensor distinct(const Shape& s) {
    int64_t n = numel_of(s);
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = -1.0 + 0.05 * static_cast<double>(i);
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(v[static_cast<size_t>(i)], v[rng_.below(static_cast<uint64_t>(i + 1))]);
    return Tensor::from_vector(v, s);
  }
  Tensor index(const Shape& s, int64_t limit) {
    std::vector<int64_t> v(static_cast<size_t>(numel_of(s)));
    for (int64_t& x : v) x = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(limit)));
    return Tensor::from_vector(v, s);
  }

 private:
  RngStream rng_;
};

struct GradCase {
  std::string name;
  std::function<std::vector<Tensor>(Inputs&)> inputs;
  test::TensorFn f;
  double tol = 1e-6, eps = 1e-6;
};

std::vector<GradCase> build_grad_table() {
  std::vector<GradCase> t;
  auto row = [&](std::string n, std::function<std::vector<Tensor>(Inputs&)> in, test::TensorFn f) {
    t.push_back({std::move(n), std::move(in), std::move(f), 1e-6, 1e-6});
  };
  // ---- element-wise ----
  struct U {
    UnaryOp op;
    double alpha;
    std::vector<double> kinks;
    bool positive;
  };
  for (const U& u : {U{UnaryOp::neg, 0, {}, false},
                     U{UnaryOp::exp, 0, {}, false},
                     U{UnaryOp::log, 0, {}, true},
                     U{UnaryOp::sqrt, 0, {}, true},
                     U{UnaryOp::rsqrt, 0, {}, true},
                     U{UnaryOp::tanh, 0, {}, false},
                     U{UnaryOp::sigmoid, 0, {}, false},
                     U{UnaryOp::relu, 0, {0}, false},
                     U{UnaryOp::gelu_tanh, 0, {}, false},
                     U{UnaryOp::gelu_erf, 0, {}, false},
                     U{UnaryOp::silu, 0, {}, false},
                     U{UnaryOp::abs, 0, {0}, false},
                     U{UnaryOp::square, 0, {}, false},
                     U{UnaryOp::softplus, 0, {}, false},
                     U{UnaryOp::add_scalar, 0.5, {}, false},
                     U{UnaryOp::mul_scalar, -1.5, {}, false},
                     U{UnaryOp::pow_scalar, 2.5, {}, true},
                     U{UnaryOp::rsub_scalar, 1, {}, false},
                     U{UnaryOp::rdiv_scalar, 2, {}, true},
                     U{UnaryOp::huber, 0.8, {-0.8, 0.8}, false},
                     U{UnaryOp::leaky_relu, 0.1, {0}, false},
                     U{UnaryOp::clamp_min, 0.2, {0.2}, false},
                     U{UnaryOp::copy, 0, {}, false}})
    row(
        std::string("unary_") + unary_op_name(u.op),
        [u](Inputs& in) {
          return std::vector<Tensor>{u.positive ? in.uniform(Shape{3, 4}, 0.3, 2.0)
                                                : in.away_from(Shape{3, 4}, u.kinks)};
        },
        [u](const std::vector<Tensor>& x) { return unary(u.op, x[0], u.alpha); });
  for (BinaryOp op :
       {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::maximum, BinaryOp::minimum})
    row(
        std::string("binary_") + binary_op_name(op),
        [op](Inputs& in) {
          // broadcast (3, 1, 4) with (2, 4); maximum/minimum inputs never tie (a is even, b odd multiples of
          // 0.05)
          Tensor a = in.normal(Shape{3, 1, 4}),
                 b = op == BinaryOp::div ? in.uniform(Shape{2, 4}, 0.5, 2) : in.normal(Shape{2, 4});
          if (op == BinaryOp::maximum || op == BinaryOp::minimum) {
            a = in.distinct(Shape{3, 1, 4});
            b = add(in.distinct(Shape{2, 4}), 0.025);
          }
          return std::vector<Tensor>{a, b};
        },
        [op](const std::vector<Tensor>& x) { return binary(op, x[0], x[1]); });
  // ---- reductions ----
  row(
      "sum_dims",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3, 4})};
      },
      [](auto& x) {
        return sum(x[0], {0, 2});
      });
  row(
      "sum_all",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{5, 3})};
      },
      [](auto& x) { return sum(x[0]); });
  row(
      "mean_keepdim",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{3, 5})};
      },
      [](auto& x) { return mean(x[0], {1}, true); });
  row(
      "max_dim",
      [](Inputs& in) {
        return std::vector<Tensor>{in.distinct(Shape{3, 4, 2})};
      },
      [](auto& x) { return max(x[0], 1); });
  row(
      "max_all", [](Inputs& in) { return std::vector<Tensor>{in.distinct(Shape{7})}; },
      [](auto& x) { return max(x[0]); });
  // ---- linear algebra ----
  row(
      "matmul_batched_broadcast",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 1, 3, 4}), in.normal(Shape{3, 4, 2})};
      },
      [](auto& x) { return matmul(x[0], x[1]); });
  row(
      "matmul_shared_rhs",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3, 4}), in.normal(Shape{4, 5})};
      },
      [](auto& x) { return matmul(x[0], x[1]); });
  row(
      "matmul_vectors",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{4}), in.normal(Shape{4, 3})};
      },
      [](auto& x) { return matmul(x[0], x[1]); });
  row(
      "linear",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3, 4}), in.normal(Shape{5, 4}), in.normal(Shape{5})};
      },
      [](auto& x) { return linear(x[0], x[1], x[2]); });
  // ---- shape ops ----
  row(
      "views",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3, 4})};
      },
      [](auto& x) {
        Tensor v = x[0].permute({2, 0, 1}).slice(0, 1, 4, 2).reshape(Shape{2, 6}).transpose(0, 1);
        return mul(v, expand(x[0].select(0, 1).slice(1, 0, 2).reshape(Shape{6, 1}), Shape{6, 2}));
      });
  row(
      "concat_split_stack",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3}), in.normal(Shape{2, 2})};
      },
      [](auto& x) {
        std::vector<Tensor> parts = split(concat({x[0], x[1]}, 1), {1, 4}, 1);
        return stack({mul(parts[0], parts[0]), parts[1].slice(1, 0, 1)}, 0);
      });
  // through f32 and back: a large step, since f32 rounding would swamp a 1e-6 difference
  row(
      "cast", [](Inputs& in) { return std::vector<Tensor>{in.normal(Shape{4})}; },
      [](auto& x) { return cast(mul(cast(x[0], DType::f32), 2.0), DType::f64); });
  t.back().eps = 1e-2;
  t.back().tol = 1e-4;
  // ---- softmax family ----
  for (int dim : {-1, 0})
    row(
        dim < 0 ? "softmax_last" : "softmax_dim0",
        [](Inputs& in) {
          return std::vector<Tensor>{in.normal(Shape{3, 5})};
        },
        [dim](auto& x) { return softmax(x[0], dim); });
  row(
      "log_softmax",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 3, 4})};
      },
      [](auto& x) { return log_softmax(x[0], 1); });
  row(
      "logsumexp",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{3, 4})};
      },
      [](auto& x) { return logsumexp(x[0], 0, true); });
  for (bool log : {false, true})
    row(
        log ? "log_softmax_causal" : "softmax_causal",
        [](Inputs& in) {
          return std::vector<Tensor>{in.normal(Shape{2, 3, 5})};
        },
        // exp() keeps the projection finite where log-softmax is -inf (masked keys)
        [log](auto& x) {
          Tensor y = detail::softmax_last_dim(x[0], log, 3);
          return log ? exp(y) : y;
        });
  // ---- normalization ----
  row(
      "layernorm",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{3, 6}), in.normal(Shape{6}), in.normal(Shape{6})};
      },
      [](auto& x) { return layernorm(x[0], x[1], x[2]); });
  row(
      "layernorm_plain",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 2, 5}, 3.0)};
      },
      [](auto& x) { return layernorm(x[0], Tensor(), Tensor(), 1e-3); });
  // ---- indexing ----
  row(
      "embedding",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{5, 3}), in.index(Shape{2, 4}, 5)};
      },
      [](auto& x) { return embedding(x[0], x[1]); });
  row(
      "index_select",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{4, 2, 2}), in.index(Shape{6}, 4)};
      },
      [](auto& x) { return index_select(x[0], x[1]); });
  row(
      "index_add",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{6, 3}), in.index(Shape{6}, 3)};
      },
      [](auto& x) { return index_add(x[0], x[1], 4); });
  row(
      "gather",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{3, 5}), in.index(Shape{2, 4}, 5)};
      },
      [](auto& x) { return gather(x[0], 1, x[1]); });
  row(
      "scatter_add",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{4, 3}), in.normal(Shape{6, 3}), in.index(Shape{5, 3}, 4)};
      },
      [](auto& x) { return scatter_add(x[0], 0, x[2], x[1]); });
  row(
      "topk",
      [](Inputs& in) {
        return std::vector<Tensor>{in.distinct(Shape{3, 6})};
      },
      [](auto& x) { return topk(x[0], 2, nullptr); });
  // ---- convolution ----
  row(
      "conv2d_pad1",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{2, 2, 4, 5}), in.normal(Shape{3, 2, 3, 3}),
                                   in.normal(Shape{3})};
      },
      [](auto& x) { return conv2d(x[0], x[1], x[2], 1, 1); });
  row(
      "conv2d_stride2",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{1, 2, 5, 5}), in.normal(Shape{2, 2, 2, 2})};
      },
      [](auto& x) { return conv2d(x[0], x[1], Tensor(), 2, 0); });
  // ---- losses ----
  for (double smoothing : {0.0, 0.2})
    row(
        smoothing > 0 ? "cross_entropy_smoothing" : "cross_entropy",
        [](Inputs& in) {
          return std::vector<Tensor>{in.normal(Shape{2, 3, 4}),
                                     Tensor::from_vector<int64_t>({1, 3, -100, 0, 2, 2}, Shape{2, 3})};
        },
        [smoothing](auto& x) { return cross_entropy(x[0], x[1], smoothing); });
  // InfoNCE in the embeddings and the log scale (s = e^0.7 ~ 2), and at the clamp (no gradient to log_scale)
  for (double log_scale : {0.7, 4.8})
    row(
        log_scale > 4.6 ? "contrastive_loss_clamped" : "contrastive_loss",
        [log_scale](Inputs& in) {
          return std::vector<Tensor>{in.normal(Shape{5, 3}), in.normal(Shape{5, 3}),
                                     Tensor::full(Shape{}, log_scale, DType::f64)};
        },
        [](auto& x) { return contrastive_loss(x[0], x[1], x[2], 100.0); });
  // NegCLIP: four extra text negatives, below and at the clamp
  for (double log_scale : {0.7, 4.8})
    row(
        log_scale > 4.6 ? "contrastive_loss_with_negatives_clamped" : "contrastive_loss_with_negatives",
        [log_scale](Inputs& in) {
          return std::vector<Tensor>{in.normal(Shape{5, 3}), in.normal(Shape{5, 3}), in.normal(Shape{4, 3}),
                                     Tensor::full(Shape{}, log_scale, DType::f64)};
        },
        [](auto& x) { return contrastive_loss_with_negatives(x[0], x[1], x[2], x[3], 100.0); });
  row(
      "mse_loss",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{3, 4}), in.normal(Shape{3, 4})};
      },
      [](auto& x) { return mse_loss(x[0], x[1]); });
  row(
      "huber_loss",
      [](Inputs& in) {
        // pred - target stays away from +-delta = +-0.5
        Tensor target = in.normal(Shape{3, 4});
        return std::vector<Tensor>{add(target, in.away_from(Shape{3, 4}, {-0.5, 0.5})), target};
      },
      [](auto& x) { return huber_loss(x[0], x[1], 0.5); });
  // ---- random: dropout is linear in x for a fixed stream ----
  row(
      "dropout",
      [](Inputs& in) {
        return std::vector<Tensor>{in.normal(Shape{4, 5})};
      },
      [](auto& x) {
        RngStream rng(9, "dropout");
        return dropout(x[0], 0.4, true, rng);
      });
  // ---- attention: every mask kind; item 1's padding leaves key 1 only, item 2's none (queries that see no
  // key: zero output, zero gradient); with causal and Tq > Tk the first query sees no key either ----
  for (int kind = 0; kind < 4; ++kind) {
    const bool causal = kind & 1, padded = kind & 2;
    const char* names[] = {"sdpa", "sdpa_causal", "sdpa_padding", "sdpa_causal_padding"};
    for (bool more_queries : {false, true})
      row(
          std::string(names[kind]) + (more_queries ? "_tq_gt_tk" : ""),
          [more_queries](Inputs& in) {
            int64_t Tq = more_queries ? 5 : 3;
            return std::vector<Tensor>{
                in.normal(Shape{3, 2, Tq, 4}), in.normal(Shape{3, 2, 4, 4}), in.normal(Shape{3, 2, 4, 2}),
                Tensor::from_vector<int64_t>({1, 1, 1, 1, 0, 2, 0, 0, 0, 0, 0, 0}, Shape{3, 4})};
          },
          [causal, padded](auto& x) {
            AttentionMask m;
            m.causal = causal;
            if (padded) m.key_padding = x[3];
            return scaled_dot_product_attention(x[0], x[1], x[2], m);
          });
  }
  return t;
}

const std::vector<GradCase>& grad_table() {
  static const std::vector<GradCase> t = build_grad_table();
  return t;
}

class Grad : public ::testing::TestWithParam<std::tuple<int, BackendKind>> {};

TEST_P(Grad, MatchesCentralDifferences) {
  const GradCase& c = grad_table()[std::get<0>(GetParam())];
  const BackendKind kind = std::get<1>(GetParam());
  std::optional<BackendScope> scope;  // host tensors run on ref or cpu; cuda runs on device copies
  if (kind != BackendKind::cuda) scope.emplace(kind);
  Inputs in(std::hash<std::string>{}(c.name));
  test::GradCheckOptions o;
  o.tol = c.tol;
  o.eps = c.eps;
  if (kind == BackendKind::cuda) o.device = Device::cuda();
  EXPECT_EQ(check_gradients(c.f, c.inputs(in), o), "") << c.name;
}

std::string grad_case_name(const ::testing::TestParamInfo<std::tuple<int, BackendKind>>& info) {
  return grad_table()[std::get<0>(info.param)].name + "_" + backend_name(std::get<1>(info.param));
}

// ref and cpu always; cuda when a device is usable here.
std::vector<BackendKind> grad_backends() {
  std::vector<BackendKind> b = {BackendKind::ref, BackendKind::cpu};
  if (cuda_backend().available()) b.push_back(BackendKind::cuda);
  return b;
}

INSTANTIATE_TEST_SUITE_P(Ops, Grad,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(grad_table().size())),
                                            ::testing::ValuesIn(grad_backends())),
                         grad_case_name);

// The cuda rows above exist only where a device is usable; this says so when they do not.
TEST(GradCuda, Present) {
  if (!cuda_backend().available()) GTEST_SKIP() << "cuda backend: skipped (no device / built without CUDA)";
  SUCCEED() << "cuda rows of Ops/Grad ran";
}

// Masked keys take no part in the causal log-softmax backward, whatever gradient arrives there.
TEST(GradMask, CausalLogSoftmaxIgnoresUpstreamAtMaskedKeys) {
  for (BackendKind kind : {BackendKind::ref, BackendKind::cpu}) {
    BackendScope scope(kind);
    Tensor x = Tensor::from_vector<double>({0.3, -1.2, 2.0, 0.5, 0.1, -0.4}, Shape{2, 3}).requires_grad_();
    // 2 queries, 3 keys: query 0 sees keys 0..1, query 1 sees keys 0..2
    detail::softmax_last_dim(x, true, 2).backward(Tensor::ones(Shape{2, 3}, DType::f64));
    Tensor head = x.detach().slice(0, 0, 1).slice(1, 0, 2).contiguous().requires_grad_();
    log_softmax(head).backward(Tensor::ones(Shape{1, 2}, DType::f64));
    std::vector<double> g = x.grad().to_vector<double>(), h = head.grad().to_vector<double>();
    EXPECT_NEAR(g[0], h[0], 1e-12);
    EXPECT_NEAR(g[1], h[1], 1e-12);
    EXPECT_EQ(g[2], 0.0);
    double row1 = g[3] + g[4] + g[5];  // a full row's log-softmax gradient sums to sum(gy) - 3 = 0
    EXPECT_NEAR(row1, 0.0, 1e-12);
  }
}

// The checker itself must catch a wrong gradient (a test that cannot fail proves nothing).
TEST(GradChecker, ReportsAWrongBackward) {
  test::TensorFn wrong = [](const std::vector<Tensor>& x) {
    Tensor y = mul(x[0], 2.0);
    Tensor out = y.detach().clone();
    record(out, "wrong", {x[0]}, [](const Tensor& g) { return std::vector<Tensor>{mul(g, 3.0)}; });
    return out;
  };
  std::string m = check_gradients(wrong, {Tensor::from_vector<double>({1, 2, 3}, Shape{3})});
  EXPECT_NE(m.find("3 gradient element(s) differ"), std::string::npos) << m;
  EXPECT_NE(m.find("input 0"), std::string::npos) << m;
}

TEST(GradChecker, ChecksOnlyRequestedInputs) {
  test::GradCheckOptions o;
  o.wrt = {false, true};
  test::TensorFn f = [](const std::vector<Tensor>& x) { return mul(x[0], x[1]); };
  EXPECT_EQ(
      check_gradients(
          f, {Tensor::from_vector<double>({1, 2}, Shape{2}), Tensor::from_vector<double>({3, 4}, Shape{2})},
          o),
      "");
}

}  // namespace
}  // namespace moelab
