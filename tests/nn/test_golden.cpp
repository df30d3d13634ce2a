// A pre-LN transformer block against PyTorch (tests/data/gen_golden.py): output, loss, the gradient of
// every parameter and of the input (plain and causal), and the parameters after 3 AdamW steps. The
// weights are loaded by name with Module::load: PyTorch's names are moelab's names.
#include <gtest/gtest.h>

#include <cmath>

#include "core/nn/tensor_file.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"

using namespace moelab;
using namespace moelab::nn;

namespace {

const std::string kDir = MOELAB_TEST_DATA_DIR;

struct Golden {
  io::SafetensorsFile file = io::read_safetensors(kDir + "/golden_block.safetensors");
  Tensor get(const std::string& name, DType dtype) const { return to_tensor(file.get(name), file.path()).to(dtype); }
};

std::shared_ptr<TransformerBlock> make_block(bool causal, DType dtype) {
  TransformerBlockOptions o;
  o.dim = 16;
  o.num_heads = 2;
  o.causal = causal;
  o.ln_eps = 1e-5;
  o.mlp_ratio = 4.0;
  o.activation = Activation::gelu_tanh;
  o.dtype = DType::f64;
  RngStream rng(0, "init");
  auto block = std::make_shared<TransformerBlock>(o, rng);
  block->load(kDir + "/golden_block_weights.safetensors");
  if (dtype != DType::f64) block->to(dtype);
  return block;
}

// max |a - b| / max |b|: the error relative to the tensor's scale.
double relative_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / std::max(scale, 1e-300);
}

Tensor loss_of(const Tensor& y, const Tensor& target) { return mul(sum(square(sub(y, target))), 0.5); }

// A block's forward with a fresh context (no side inputs, no draws needed).
Tensor run_block(TransformerBlock& block, const Tensor& x) {
  ForwardContext ctx;
  return block.forward(x, ctx);
}

void check_forward_backward(const std::string& prefix, bool causal, DType dtype, double tol) {
  Golden g;
  auto block = make_block(causal, dtype);
  Tensor x = g.get("x", dtype).requires_grad_();
  Tensor y = run_block(*block, x);
  Tensor loss = loss_of(y, g.get("target", dtype));
  loss.backward();
  EXPECT_LT(relative_error(y, g.get(prefix + "y", DType::f64)), tol) << "output";
  EXPECT_NEAR(loss.item(), g.get(prefix + "loss", DType::f64).item(), tol * std::abs(loss.item())) << "loss";
  EXPECT_LT(relative_error(x.grad(), g.get(prefix + "grad.x", DType::f64)), tol) << "grad of the input";
  int checked = 0;
  for (const auto& [name, p] : block->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_LT(relative_error(p.grad(), g.get(prefix + "grad." + name, DType::f64)), tol) << "grad of " << name;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

void check_adamw(DType dtype, double tol) {
  Golden g;
  auto block = make_block(false, dtype);
  optim::AdamW opt(block->named_parameters(),
                   optim::AdamWOptions{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
  Tensor x = g.get("x", dtype), target = g.get("target", dtype);
  for (int step = 1; step <= 3; ++step) {
    opt.zero_grad();
    loss_of(run_block(*block, x), target).backward();
    opt.step();
    for (const auto& [name, p] : block->named_parameters()) {
      Tensor want = g.get("adamw." + std::to_string(step) + "." + name, DType::f64);
      if (name == "attn.qkv.bias") {
        // The key bias (rows d..2d) has an exactly zero gradient (it shifts every score of a query
        // equally), so both sides update it by lr * noise / (|noise| + eps): rounding noise, not maths.
        for (int64_t part : {0, 2})
          EXPECT_LT(relative_error(p.slice(0, part * 16, part * 16 + 16), want.slice(0, part * 16, part * 16 + 16)),
                    tol)
              << "step " << step << " " << name << " part " << part;
        continue;
      }
      EXPECT_LT(relative_error(p, want), tol) << "step " << step << " " << name;
    }
  }
}

}  // namespace

TEST(Golden, FileHasEveryParameter) {
  Golden g;
  auto block = make_block(false, DType::f64);
  for (const auto& [name, p] : block->named_parameters()) {
    EXPECT_TRUE(g.file.contains("grad." + name)) << name;
    EXPECT_TRUE(g.file.contains("adamw.3." + name)) << name;
  }
  EXPECT_EQ(g.file.get("x").shape_str(), "[2, 5, 16]");
}

TEST(Golden, BlockFloat64Cpu) {
  check_forward_backward("", false, DType::f64, 1e-10);
  check_forward_backward("causal.", true, DType::f64, 1e-10);
}

TEST(Golden, BlockFloat64Ref) {
  BackendScope scope(BackendKind::ref);
  check_forward_backward("", false, DType::f64, 1e-10);
  check_forward_backward("causal.", true, DType::f64, 1e-10);
}

TEST(Golden, BlockFloat32) {
  check_forward_backward("", false, DType::f32, 2e-5);
  check_forward_backward("causal.", true, DType::f32, 2e-5);
}

TEST(Golden, AdamWStepsFloat64) {
  check_adamw(DType::f64, 1e-10);
  BackendScope scope(BackendKind::ref);
  check_adamw(DType::f64, 1e-10);
}

TEST(Golden, AdamWStepsFloat32) { check_adamw(DType::f32, 2e-5); }
