// The cuda backend on a device, against the cpu backend: copies, a few ops with their backward, the MoE
// dispatch kernels, an MoE layer forward/backward and a short training run. Without a usable device
// (CI, or a build without CUDA) each of these is skipped with a message saying so; device selection
// is tested everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/autograd/autograd.h"
#include "core/backend/device_select.h"
#include "core/moe/moe_layer.h"
#include "core/nn/layers.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"
#include "core/util/philox.h"
#include "moe/helpers_moe.h"

namespace moelab {
namespace {

const Device kCuda = Device::cuda(0);

#define REQUIRE_CUDA_DEVICE()                                                                           \
  do {                                                                                                  \
    if (!cuda_backend().available())                                                                    \
      GTEST_SKIP() << "cuda backend skipped: " << cuda_device_summary()                                 \
                   << (cuda_built() ? " (the CUDA code is compiled; it runs where a device is present)" \
                                    : "");                                                              \
  } while (0)

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Largest |got - want| / max(1, |want|), both brought to the host as f64.
double max_err(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i)
    m = std::max(m, std::abs(g[i] - w[i]) / std::max(1.0, std::abs(w[i])));
  return m;
}

TEST(CudaSmoke, DeviceSelection) {
  EXPECT_EQ(resolve_device("cpu"), Device::cpu());
  EXPECT_NE(error_of([] { resolve_device("gpu"); }).find("expected cpu, cuda or cuda:N"), std::string::npos);
  if (cuda_device_count() == 0) {
    std::string m = error_of([] { resolve_device("cuda"); });
    EXPECT_NE(m.find(cuda_built() ? "no CUDA device" : "built without"), std::string::npos) << m;
    EXPECT_NE(m.find("device = \"cpu\""), std::string::npos) << m;
  } else {
    EXPECT_EQ(resolve_device("cuda"), kCuda);
    EXPECT_EQ(resolve_device("cuda:0"), kCuda);
    std::string m = error_of([] { resolve_device("cuda:99"); });
    EXPECT_NE(m.find("this machine has"), std::string::npos) << m;
  }
  EXPECT_FALSE(cuda_device_summary().empty());
}

TEST(CudaSmoke, CopiesRoundTripExactly) {
  REQUIRE_CUDA_DEVICE();
  // 3M floats = 12 MB: more than the 4 MiB pinned staging buffers, so the chunked path runs too.
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3'000'000)}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(philox::uniform_at(7, uint64_t(i)) - 0.5);
    Tensor d = Tensor::from_vector(v, Shape{n}).to(kCuda);
    EXPECT_EQ(d.device(), kCuda);
    EXPECT_EQ(d.to_vector<float>(), v) << n << " floats";
  }
  std::vector<int64_t> iv{-3, 0, 5, int64_t(1) << 40};
  EXPECT_EQ(Tensor::from_vector(iv, Shape{4}).to(kCuda).clone().to_vector<int64_t>(), iv);
  // A strided view copied and converted on the device.
  Tensor m = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, Shape{2, 3}).to(kCuda);
  EXPECT_EQ(m.t().contiguous().to(DType::f32).to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(CudaSmoke, OpsAndBackwardMatchCpu) {
  REQUIRE_CUDA_DEVICE();
  Tensor a = test::randn(Shape{3, 5, 7}, 1), b = test::randn(Shape{7, 4}, 2),
         c = test::randn(Shape{3, 4, 7}, 3);
  Tensor q = test::randn(Shape{2, 2, 6, 8}, 4), k = test::randn(Shape{2, 2, 6, 8}, 5),
         v = test::randn(Shape{2, 2, 6, 8}, 6);
  Tensor gamma = test::randn(Shape{7}, 7), beta = test::randn(Shape{7}, 8);
  Tensor target =
      Tensor::from_vector(std::vector<int64_t>{0, 3, 1, 2, -100, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0}, Shape{15});
  auto run = [&](Device dev) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : {a, b, c, q, k, v, gamma, beta}) leaves.push_back(t.to(dev).requires_grad_(true));
    Tensor mm = matmul(leaves[0], leaves[1]);                   // (3, 5, 4), shared right matrix
    Tensor bmm = matmul(leaves[0], leaves[2].transpose(1, 2));  // (3, 5, 4), batched
    Tensor att = scaled_dot_product_attention(leaves[3], leaves[4], leaves[5], true);  // fused masked softmax
    Tensor ln = layernorm(leaves[0], leaves[6], leaves[7]);
    Tensor logits = add(mm, bmm).reshape(Shape{15, 4});
    Tensor loss = add(add(cross_entropy(logits, target.to(dev), 0.1), sum(mul(att, att))), sum(mul(ln, ln)));
    loss.backward();
    std::vector<Tensor> out{loss.detach(), att.detach(), ln.detach(), softmax(logits, -1).detach()};
    for (const Tensor& l : leaves) out.push_back(l.grad());
    return out;
  };
  std::vector<Tensor> want = run(Device::cpu()), got = run(kCuda);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].device(), kCuda) << "result " << i;
    EXPECT_LT(max_err(got[i], want[i]), 1e-4) << "result " << i;
  }
}

// conv2d on cuda runs through cuDNN (deterministic algorithms) where the build found it: forward and both
// gradients against the cpu's im2col + GEMM, strided and padded, f32 and f64, and the same bits twice.
TEST(CudaSmoke, Conv2dMatchesCpuAndRepeats) {
  REQUIRE_CUDA_DEVICE();
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = test::randn(Shape{3, 4, 11, 9}, 21).to(dt), w = test::randn(Shape{5, 4, 3, 3}, 22).to(dt),
           b = test::randn(Shape{5}, 23).to(dt);
    auto run = [&](Device dev) {
      Tensor xl = x.to(dev).requires_grad_(true), wl = w.to(dev).requires_grad_(true),
             bl = b.to(dev).requires_grad_(true);
      Tensor y = conv2d(xl, wl, bl, 2, 1);  // (3, 5, 6, 5)
      sum(mul(y, y)).backward();
      return std::vector<Tensor>{y.detach(), xl.grad(), wl.grad(), bl.grad()};
    };
    std::vector<Tensor> want = run(Device::cpu()), got = run(kCuda), again = run(kCuda);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].shape(), want[i].shape()) << "result " << i;
      EXPECT_LT(max_err(got[i], want[i]), dt == DType::f32 ? 1e-4 : 1e-10) << dtype_name(dt) << " result " << i;
      EXPECT_EQ(got[i].to_vector<double>(), again[i].to_vector<double>()) << "not deterministic: result " << i;
    }
  }
}

TEST(CudaSmoke, ReductionsRandomAndIndexErrors) {
  REQUIRE_CUDA_DEVICE();
  Tensor x = test::randn(Shape{300, 1000}, 9);
  Tensor xd = x.to(kCuda);
  // Sums run in a fixed order: the same bits every time, and close to the cpu's.
  Tensor s1 = sum(xd, {0}), s2 = sum(xd, {0});
  EXPECT_EQ(s1.to_vector<float>(), s2.to_vector<float>());
  EXPECT_LT(max_err(s1, sum(x, {0})), 1e-5);
  EXPECT_LT(max_err(sum(xd, {1}), sum(x, {1})), 1e-5);
  EXPECT_LT(max_err(max(xd, 1), max(x, 1)), 0.0 + 1e-12);
  // Philox uniforms are exact on both backends.
  RngStream r1(5, "smoke"), r2(5, "smoke");
  EXPECT_EQ(rand_uniform(Shape{1000}, -1, 1, r1, DType::f32, kCuda).to_vector<float>(),
            rand_uniform(Shape{1000}, -1, 1, r2, DType::f32).to_vector<float>());
  // Bad indices are reported, naming the kernel.
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 7, 1}, Shape{3, 1}).to(kCuda);
  std::string m = error_of([&] { gather(xd.slice(0, 0, 3).slice(1, 0, 4), 1, idx).to(Device::cpu()); });
  EXPECT_NE(m.find("out of range"), std::string::npos) << m;
}

TEST(CudaSmoke, MoeKernelsMatchCpu) {
  REQUIRE_CUDA_DEVICE();
  int64_t T = 40, k = 2, E = 5, d = 12, f = 20, S = T * k;
  std::vector<int64_t> se(static_cast<size_t>(S)), to(static_cast<size_t>(T + 1));
  for (int64_t s = 0; s < S; ++s) {
    double u = philox::uniform_at(11, uint64_t(s));
    se[s] = u < 0.05 ? -1 : std::min<int64_t>(E - 1, int64_t(u * u * double(E)));  // skewed, some unassigned
  }
  for (int64_t t = 0; t <= T; ++t) to[t] = t * k;
  Tensor slot_expert = Tensor::from_vector(se, Shape{S}),
         token_offsets = Tensor::from_vector(to, Shape{T + 1});
  Tensor prio = test::randn(Shape{S}, 12);
  Tensor x = test::randn(Shape{T, d}, 13), w = test::randn(Shape{S}, 14), gout = test::randn(Shape{T, d}, 15);
  for (ExpertActivation act : {ExpertActivation::relu, ExpertActivation::gelu, ExpertActivation::swiglu})
    for (int64_t capacity : {int64_t(-1), int64_t(6)})
      for (bool with_priority : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << "act " << int(act) << " capacity " << capacity << " priority " << with_priority);
        ExpertWeights ew;
        ew.act = act;
        ew.w1 = test::randn(Shape{E, d, f}, 16, 0.3), ew.b1 = test::randn(Shape{E, f}, 17, 0.1);
        ew.w2 = test::randn(Shape{E, f, d}, 18, 0.3), ew.b2 = test::randn(Shape{E, d}, 19, 0.1);
        if (act == ExpertActivation::swiglu) ew.w3 = test::randn(Shape{E, d, f}, 20, 0.3);
        auto run = [&](Backend& be, Device dev) {
          auto on = [&](const Tensor& t) { return t.defined() ? t.to(dev) : t; };
          auto i64 = [&](int64_t n) { return Tensor::empty(Shape{n}, DType::i64, dev); };
          Tensor counts = i64(E), offsets = i64(E + 1), row_slot = i64(S), slot_row = i64(S);
          be.moe_plan(on(slot_expert), with_priority ? on(prio) : Tensor(), E, capacity, counts, offsets,
                      row_slot, slot_row);
          Tensor host_offsets = offsets.to(Device::cpu());
          int64_t R = host_offsets.to_vector<int64_t>()[E];
          ExpertWeights wd{on(ew.w1), on(ew.b1), on(ew.w2), on(ew.b2), on(ew.w3), act};
          auto f32 = [&](int64_t r, int64_t c) { return Tensor::empty(Shape{r, c}, DType::f32, dev); };
          Tensor x_rows = f32(R, d), h = f32(R, f), a = f32(R, f),
                 g = act == ExpertActivation::swiglu ? f32(R, f) : Tensor();
          Tensor y_rows = f32(R, d), out = f32(T, d), gy = f32(R, d),
                 gw = Tensor::empty(Shape{S}, DType::f32, dev);
          Tensor gx_rows = f32(R, d), gx = f32(T, d);
          ExpertWeights grads{Tensor::empty(ew.w1.shape(), DType::f32, dev),
                              Tensor::empty(ew.b1.shape(), DType::f32, dev),
                              Tensor::empty(ew.w2.shape(), DType::f32, dev),
                              Tensor::empty(ew.b2.shape(), DType::f32, dev),
                              g.defined() ? Tensor::empty(ew.w3.shape(), DType::f32, dev) : Tensor(),
                              act};
          be.moe_gather_rows(on(x), slot_row, on(token_offsets), x_rows);
          be.moe_expert_ffn(x_rows, host_offsets, wd, h, g, a, y_rows);
          be.moe_combine(y_rows, on(w), slot_row, on(token_offsets), out);
          be.moe_combine_backward(y_rows, on(w), slot_row, on(token_offsets), on(gout), gy, gw);
          be.moe_expert_ffn_backward(x_rows, host_offsets, wd, h, g, a, gy, gx_rows, grads);
          be.moe_scatter_rows(gx_rows, slot_row, on(token_offsets), gx);
          std::vector<Tensor> r{counts, offsets,  row_slot, slot_row, out,     gw,
                                gx,     grads.w1, grads.b1, grads.w2, grads.b2};
          if (g.defined()) r.push_back(grads.w3);
          return r;
        };
        std::vector<Tensor> want = run(cpu_backend(), Device::cpu()), got = run(cuda_backend(), kCuda);
        for (size_t i = 0; i < 4; ++i)
          EXPECT_EQ(got[i].to_vector<int64_t>(), want[i].to_vector<int64_t>()) << "plan output " << i;
        for (size_t i = 4; i < want.size(); ++i) EXPECT_LT(max_err(got[i], want[i]), 1e-4) << "result " << i;
      }
}

TEST(CudaSmoke, MoeLayerForwardBackwardMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  moe::MoEConfig cfg;  // defaults: 8 experts, top-2
  moe::MoELayerOptions options;
  options.d_model = 16, options.d_ff = 32, options.seq_len = 12;
  auto make = [&] {
    RngStream rng(3, "init");
    return std::make_shared<moe::MoELayer>(cfg, options, rng);
  };
  auto cpu_layer = make(), gpu_layer = make();
  gpu_layer->to(kCuda);
  Tensor x = test::randn(Shape{2, 12, 16}, 21);
  auto run = [&](moe::MoELayer& layer, Device dev) {
    Tensor xd = x.to(dev).requires_grad_(true);
    nn::ForwardContext ctx;
    Tensor y = layer.forward(xd, ctx);
    Tensor loss = sum(mul(y, y));
    EXPECT_FALSE(ctx.aux_losses().empty());  // the default switch loss
    for (const auto& aux : ctx.aux_losses()) loss = add(loss, mul(aux.value, aux.weight));
    loss.backward();
    std::vector<Tensor> r{y.detach(), xd.grad()};
    for (const auto& [name, p] : layer.named_parameters())
      r.push_back(p.grad().defined() ? p.grad() : Tensor::zeros(p.shape()));
    return r;
  };
  std::vector<Tensor> want = run(*cpu_layer, Device::cpu()), got = run(*gpu_layer, kCuda);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LT(max_err(got[i], want[i]), 1e-4) << "result " << i;
}

TEST(CudaSmoke, ShortTrainingRunMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  // A 2-layer MLP classifier, 30 AdamW steps on fixed data; the two devices follow the same loss curve.
  Tensor data = test::randn(Shape{64, 8}, 31);
  std::vector<int64_t> labels(64);
  std::vector<float> xs = data.to_vector<float>();
  for (int i = 0; i < 64; ++i) labels[i] = (xs[i * 8] > 0 ? 1 : 0) + (xs[i * 8 + 1] > 0 ? 2 : 0);
  Tensor target = Tensor::from_vector(labels, Shape{64});
  auto train = [&](Device dev) {
    RngStream rng(4, "init");
    auto l1 = std::make_shared<nn::Linear>(8, 32, true, rng),
         l2 = std::make_shared<nn::Linear>(32, 4, true, rng);
    l1->to(dev), l2->to(dev);
    nn::NamedTensors params = l1->named_parameters();
    for (auto& p : l2->named_parameters()) params.push_back({"l2." + p.first, p.second});
    optim::AdamWOptions adamw;
    adamw.lr = 1e-2;
    optim::AdamW opt(params, adamw);
    Tensor xd = data.to(dev), td = target.to(dev);
    std::vector<double> losses;
    for (int step = 0; step < 30; ++step) {
      Tensor loss = cross_entropy(l2->forward(relu(l1->forward(xd))), td);
      loss.backward();
      opt.step();
      opt.zero_grad();
      losses.push_back(loss.item());
    }
    return losses;
  };
  std::vector<double> want = train(Device::cpu()), got = train(kCuda);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-3 * std::max(1.0, want[i])) << "step " << i;
  EXPECT_LT(got.back(), 0.7 * got.front()) << "the loss goes down on the device";
}

}  // namespace
}  // namespace moelab
