// Optimizers: 3-step examples with values from torch.optim (float64; step 1 checked by hand in the
// comments), cpu against ref, skipped parameters, state dicts.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/autograd/autograd.h"
#include "core/nn/tensor_file.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"
#include "core/util/rng.h"

using namespace moelab;
using namespace moelab::optim;

namespace {

// p = [1, -2] with the gradients [0.5, -1], [0.1, 0.3], [-0.2, 0.4] in steps 1..3.
template <typename Opt, typename Options>
std::vector<std::vector<double>> run_three_steps(const Options& o, DType dtype = DType::f64) {
  Tensor p = Tensor::from_vector<double>({1.0, -2.0}, Shape{2}).to(dtype).requires_grad_();
  Opt opt({{"p", p}}, o);
  std::vector<std::vector<double>> grads = {{0.5, -1.0}, {0.1, 0.3}, {-0.2, 0.4}}, out;
  for (const auto& g : grads) {
    p.set_grad(Tensor::from_vector<double>(g, Shape{2}).to(dtype));
    opt.step();
    out.push_back(p.to_vector<double>());
  }
  EXPECT_EQ(opt.steps_taken(), 3);
  return out;
}

void expect_steps(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want,
                  double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s)
    for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(got[s][i], want[s][i], tol) << "step " << s + 1 << " element " << i;
}

}  // namespace

TEST(AdamW, ThreeStepsMatchTorch) {
  // Step 1: p = 1 * (1 - 0.1*0.1) = 0.99; m^ = 0.5, v^ = 0.25 -> p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.89.
  AdamWOptions o{.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
  std::vector<std::vector<double>> want = {{0.890000002, -1.880000001},
                                           {0.8007959063646517, -1.8184151424192265},
                                           {0.7583525727518424, -1.792225087042392}};
  for (BackendKind k : {BackendKind::cpu, BackendKind::ref}) {
    BackendScope scope(k);
    expect_steps(run_three_steps<AdamW>(o), want, 1e-14);
    expect_steps(run_three_steps<AdamW>(o, DType::f32), want, 1e-6);
  }
}

TEST(SGD, ThreeStepsMatchTorch) {
  // Momentum step 1: g = 0.5 + 0.01*1 = 0.51, buf = g, p = 1 - 0.1*0.51 = 0.949.
  // Nesterov step 1: g + 0.9 buf = 0.969, p = 0.9031.
  SgdOptions m{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = false};
  SgdOptions n{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true};
  SgdOptions plain{.lr = 0.1};
  for (BackendKind k : {BackendKind::cpu, BackendKind::ref}) {
    BackendScope scope(k);
    expect_steps(run_three_steps<SGD>(m),
                 {{0.949, -1.898}, {0.8921509999999999, -1.8343019999999999}, {0.8600947489999999, -1.815139498}},
                 1e-14);
    expect_steps(run_three_steps<SGD>(n), {{0.9031, -1.8062}, {0.84107411, -1.77714822}, {0.831465558191, -1.798250616382}},
                 1e-14);
    expect_steps(run_three_steps<SGD>(plain), {{0.95, -1.9}, {0.94, -1.93}, {0.96, -1.97}}, 1e-14);
  }
}

TEST(RMSprop, ThreeStepsMatchTorch) {
  // Plain step 1: sq = 0.1 * 0.25 = 0.025, p = 1 - 0.01 * 0.5 / (sqrt(0.025) + 1e-8) = 0.96837722.
  RmspropOptions plain{.lr = 0.01, .alpha = 0.9, .eps = 1e-8, .weight_decay = 0.0, .centered = false};
  // Centered step 1: g = 0.5 + 0.1 = 0.6, sq = 0.036, ga = 0.06, avg = sqrt(0.036 - 0.0036) + 1e-3
  //   = 0.181 -> p = 1 - 0.01 * 0.6 / 0.181 = 0.96685083.
  RmspropOptions centered{.lr = 0.01, .alpha = 0.9, .eps = 1e-3, .weight_decay = 0.1, .centered = true};
  for (BackendKind k : {BackendKind::cpu, BackendKind::ref}) {
    BackendScope scope(k);
    expect_steps(run_three_steps<RMSprop>(plain),
                 {{0.968377225398316, -1.9683772243983162},
                  {0.9618539450933136, -1.9779118499877417},
                  {0.9744652775204736, -1.9902502435766645}},
                 1e-14);
    expect_steps(run_three_steps<RMSprop>(centered),
                 {{0.9668508287292817, -1.9667590027700832},
                  {0.9557146020435944, -1.9697192785567694},
                  {0.9616492965064498, -1.975633692239401}},
                 1e-14);
  }
}

namespace {
// Runs `steps` updates with random gradients on a large parameter (so the cpu loops go parallel).
template <typename Opt, typename Options>
std::vector<float> random_run(const Options& o, BackendKind kind, bool skip_second) {
  BackendScope scope(kind);
  RngStream rng(5, "data");
  Tensor a = rand_normal(Shape{70001}, 0, 1, rng).requires_grad_();
  Tensor b = rand_normal(Shape{3, 5}, 0, 1, rng).requires_grad_();
  Opt opt({{"a", a}, {"b", b}}, o);
  for (int s = 0; s < 4; ++s) {
    a.set_grad(rand_normal(a.shape(), 0, 1, rng));
    if (!(skip_second && s == 1)) b.set_grad(rand_normal(b.shape(), 0, 1, rng));
    else b.zero_grad();
    opt.step();
  }
  std::vector<float> out = a.to_vector<float>();
  for (float v : b.to_vector<float>()) out.push_back(v);
  return out;
}
template <typename Opt, typename Options> void expect_cpu_matches_ref(const Options& o) {
  std::vector<float> c = random_run<Opt>(o, BackendKind::cpu, false), r = random_run<Opt>(o, BackendKind::ref, false);
  ASSERT_EQ(c.size(), r.size());
  double worst = 0;
  for (size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(double(c[i]) - r[i]) / (1 + std::abs(r[i])));
  EXPECT_LT(worst, 2e-6);
}
}  // namespace

TEST(Optimizers, CpuMatchesRef) {
  expect_cpu_matches_ref<AdamW>(AdamWOptions{.lr = 1e-2, .weight_decay = 0.05});
  expect_cpu_matches_ref<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
  expect_cpu_matches_ref<RMSprop>(RmspropOptions{.lr = 1e-3, .alpha = 0.95, .eps = 1e-6, .centered = true});
  expect_cpu_matches_ref<RMSprop>(RmspropOptions{.lr = 1e-3});
}

TEST(Optimizers, ParametersWithoutGradAreSkipped) {
  Tensor a = Tensor::ones(Shape{2}).requires_grad_(), b = Tensor::ones(Shape{2}).requires_grad_();
  Tensor frozen = Tensor::ones(Shape{2});  // requires_grad = false: not tracked
  AdamW opt({{"a", a}, {"b", b}, {"frozen", frozen}}, AdamWOptions{.lr = 0.1});
  EXPECT_EQ(opt.num_params(), 2u);
  a.set_grad(Tensor::ones(Shape{2}));
  opt.step();
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(2, 1.0f));  // no grad: not even decayed
  EXPECT_NE(a.to_vector<float>(), std::vector<float>(2, 1.0f));
  NamedTensors sd = opt.state_dict();
  EXPECT_EQ(nn::find_tensor(sd, "a.step")->item(), 1.0);
  EXPECT_EQ(nn::find_tensor(sd, "b.step")->item(), 0.0);
  EXPECT_EQ(nn::find_tensor(sd, "step")->item(), 1.0);
  // A mismatched gradient is an error naming the parameter.
  b.set_grad(Tensor::ones(Shape{3}));
  try {
    opt.step();
    FAIL() << "a wrong-shaped gradient was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
}

TEST(Optimizers, StateDictRoundTripResumesExactly) {
  auto make = [](Tensor& p) {
    p = Tensor::from_vector<float>({0.3f, -0.7f, 1.1f}, Shape{3}).requires_grad_();
    return AdamW({{"layer.weight", p}}, AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
  };
  auto grad = [](int s) { return Tensor::from_vector<float>({0.1f * s, -0.2f, 0.05f * s * s}, Shape{3}); };
  Tensor p1, p2;
  AdamW o1 = make(p1), o2 = make(p2);
  for (int s = 1; s <= 2; ++s) {
    p1.set_grad(grad(s));
    o1.step();
  }
  std::string path = (std::filesystem::temp_directory_path() / "moelab_optim_state.safetensors").string();
  nn::save_tensors(path, o1.state_dict());
  NamedTensors loaded = nn::load_tensors(path);
  std::filesystem::remove(path);
  std::vector<std::string> names;
  for (auto& [n, t] : loaded) names.push_back(n);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"layer.weight.exp_avg", "layer.weight.exp_avg_sq", "layer.weight.step",
                                             "step"}));
  {
    NoGradGuard ng;
    Tensor(p2.detach()).copy_(p1);
  }
  o2.load_state_dict(loaded);
  EXPECT_EQ(o2.steps_taken(), 2);
  for (int s = 3; s <= 4; ++s) {
    p1.set_grad(grad(s));
    o1.step();
    p2.set_grad(grad(s));
    o2.step();
  }
  EXPECT_EQ(p1.to_vector<float>(), p2.to_vector<float>());
  // Strict: a missing or unknown name is an error naming it.
  NamedTensors bad(loaded.begin(), loaded.end());
  bad.emplace_back("other.exp_avg", Tensor::zeros(Shape{3}));
  try {
    o2.load_state_dict(bad);
    FAIL() << "an unexpected name was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected: other.exp_avg"), std::string::npos) << e.what();
  }
}
