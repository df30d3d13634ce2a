// The ViT on tiny models: shapes and parameter names for every patch embedding, gradients against
// float64 central differences, MoE placement and aux-loss/stat naming, and a tiny ViT learning a
// two-class Fashion-MNIST subset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/autograd/autograd.h"
#include "core/moe/moe_layer.h"
#include "core/moe/routing_stats.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"
#include "vision/data/fashion_mnist.h"
#include "vision/analysis/patch_map.h"
#include "vision/data/loader.h"
#include "vision/model/vit.h"

using namespace moelab;
using namespace moelab::vision;

namespace {

ViTOptions tiny_options(PatchEmbedKind kind, bool class_token) {
  ViTOptions o;
  o.image_size = 8;
  o.channels = 1;
  o.num_classes = 3;
  o.patch_embed = kind;
  o.patch_size = 4;
  o.stem_channels = {3, 5};
  o.dim = 8;
  o.depth = 2;
  o.num_heads = 2;
  o.mlp_ratio = 2.0;
  o.class_token = class_token;
  return o;
}

bool has_name(const nn::NamedTensors& named, const std::string& name) {
  return std::any_of(named.begin(), named.end(), [&](const auto& p) { return p.first == name; });
}

// An FFN stand-in with one aux term and one routing tally, to check that the ViT passes its context on.
class FakeMoE : public nn::Module {
 public:
  FakeMoE(int64_t dim, RngStream& rng) : Module("FakeMoE") {
    fc = register_module("fc", std::make_shared<nn::Linear>(dim, dim, true, rng));
  }
  Tensor forward(const Tensor& x, nn::ForwardContext& ctx) override {
    Tensor y = fc->forward(x);
    ctx.add_aux_loss(*this, "load_balance", mean(square(y)), 0.01);
    if (ctx.routing) ctx.routing->layer(path(), 2).tokens += x.size(0) * x.size(1);
    return y;
  }
  std::shared_ptr<nn::Linear> fc;
};

// A forward with a fresh context (no side inputs; aux losses and routing dropped).
Tensor logits_of(nn::Module& model, const Tensor& images) {
  nn::ForwardContext ctx;
  return model.forward(images, ctx);
}

}  // namespace

TEST(ViT, MoEBlockIndices) {
  EXPECT_EQ(moe::moe_block_indices(6, 2, {}), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(moe::moe_block_indices(4, 1, {}), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(moe::moe_block_indices(5, 3, {}), (std::vector<int64_t>{2}));
  EXPECT_TRUE(moe::moe_block_indices(4, 0, {}).empty());
  EXPECT_EQ(moe::moe_block_indices(6, 2, {5, 0}), (std::vector<int64_t>{0, 5}));
  EXPECT_THROW(moe::moe_block_indices(4, 2, {4}), Error);
  EXPECT_THROW(moe::moe_block_indices(4, 2, {1, 1}), Error);
  EXPECT_THROW(parse_patch_embed("pixels"), Error);
}

TEST(ViT, ShapesAndNamesForEveryPatchEmbedding) {
  for (auto kind : {PatchEmbedKind::conv, PatchEmbedKind::linear, PatchEmbedKind::conv_stem})
    for (bool cls : {true, false}) {
      RngStream rng(1, "init");
      ViTOptions o = tiny_options(kind, cls);
      VisionTransformer vit(o, rng);
      Tensor images = rand_normal({5, 1, 8, 8}, 0, 1, rng);
      Tensor tokens = vit.patch_embed->forward(images);
      EXPECT_EQ(tokens.shape(), (Shape{5, 4, 8}));
      Tensor logits = logits_of(vit, images);
      EXPECT_EQ(logits.shape(), (Shape{5, 3}));
      auto named = vit.named_parameters();
      EXPECT_TRUE(has_name(named, "pos_embed"));
      EXPECT_EQ(vit.pos_embed.shape(), (Shape{1, cls ? 5 : 4, 8}));
      EXPECT_EQ(has_name(named, "cls_token"), cls);
      EXPECT_TRUE(has_name(named, "blocks.1.mlp.fc1.weight"));
      EXPECT_TRUE(has_name(named, "head.weight"));
      EXPECT_TRUE(has_name(named, kind == PatchEmbedKind::linear ? "patch_embed.proj.weight"
                                                                   : "patch_embed.proj.bias"));
      EXPECT_EQ(has_name(named, "patch_embed.stem.1.weight"), kind == PatchEmbedKind::conv_stem);
      // An image of the wrong size is an error, not a crash.
      EXPECT_THROW(logits_of(vit, rand_normal({2, 1, 12, 12}, 0, 1, rng)), Error);
      // The one-tensor forward runs the context form with an empty context: the same logits.
      nn::ForwardContext ctx;
      EXPECT_EQ(vit.forward(images).to_vector<float>(), vit.forward(images, ctx).to_vector<float>());
    }
  ViTOptions bad = tiny_options(PatchEmbedKind::conv_stem, true);
  bad.stem_channels = {4};
  RngStream rng(1, "init");
  EXPECT_THROW(VisionTransformer(bad, rng), Error);
}

// Stem convs before the last log2(patch) keep the full resolution: [2, 3, 5] with patch 4 is one
// stride-1 conv (8x8 stays 8x8) and two stride-2 convs (8x8 -> 2x2 tokens).
TEST(ViT, ConvStemWithAFullResolutionConv) {
  ViTOptions o = tiny_options(PatchEmbedKind::conv_stem, false);
  o.stem_channels = {2, 3, 5};
  RngStream rng(1, "init");
  VisionTransformer vit(o, rng);
  auto& stem = *vit.patch_embed->stem;
  ASSERT_EQ(stem.size(), 3u);
  Tensor images = rand_normal({2, 1, 8, 8}, 0, 1, rng);
  EXPECT_EQ(stem[0].forward(images).shape(), (Shape{2, 2, 8, 8}));
  EXPECT_EQ(vit.patch_embed->forward(images).shape(), (Shape{2, 4, 8}));
  EXPECT_TRUE(has_name(vit.named_parameters(), "patch_embed.stem.2.weight"));
}

TEST(ViT, MoEFactoryPlacesLayersAndAuxTermsAreNamedByBlock) {
  RngStream rng(2, "init");
  ViTOptions o = tiny_options(PatchEmbedKind::conv, true);
  o.depth = 4;
  o.moe_layers = moe::moe_block_indices(4, 2, {});
  std::vector<int64_t> built;
  VisionTransformer vit(o, rng, [&](int64_t block, RngStream& r) {
    built.push_back(block);
    return std::make_shared<FakeMoE>(8, r);
  });
  EXPECT_EQ(built, (std::vector<int64_t>{1, 3}));
  auto named = vit.named_parameters();
  EXPECT_TRUE(has_name(named, "blocks.1.moe.fc.weight"));
  EXPECT_TRUE(has_name(named, "blocks.0.mlp.fc1.weight"));
  EXPECT_FALSE(has_name(named, "blocks.1.mlp.fc1.weight"));
  ASSERT_EQ(vit.moe_modules().size(), 2u);
  EXPECT_EQ(vit.moe_modules()[1].first, 3);
  nn::ForwardContext ctx;
  moe::RoutingLog log;
  ctx.routing = &log;
  vit.forward(rand_normal({2, 1, 8, 8}, 0, 1, rng), ctx);
  ASSERT_EQ(ctx.aux_losses().size(), 2u);
  EXPECT_EQ(ctx.aux_losses()[0].full_name(), "blocks.1.moe.load_balance");
  EXPECT_EQ(ctx.aux_losses()[1].full_name(), "blocks.3.moe.load_balance");
  EXPECT_EQ(ctx.aux_losses()[0].weight, 0.01);
  ASSERT_EQ(log.layers().size(), 2u);
  EXPECT_EQ(log.layers()[0].first, "blocks.1.moe");
  EXPECT_EQ(log.layers()[1].first, "blocks.3.moe");
  EXPECT_EQ(log.layers()[0].second.tokens, 2 * 5);
}

TEST(ViT, GradientsMatchFiniteDifferencesInFloat64) {
  for (auto kind : {PatchEmbedKind::conv, PatchEmbedKind::linear, PatchEmbedKind::conv_stem}) {
    RngStream rng(3, "init");
    ViTOptions o = tiny_options(kind, kind != PatchEmbedKind::linear);
    o.depth = 1;
    o.dtype = DType::f64;
    o.init = {nn::InitScheme::normal, 0.3};  // larger weights than usual so every path matters
    VisionTransformer vit(o, rng);
    Tensor images = rand_normal({2, 1, 8, 8}, 0, 1, rng, DType::f64);
    Tensor probe = rand_normal({2, 3}, 0, 1, rng, DType::f64);
    auto loss_of = [&]() { return sum(logits_of(vit, images) * probe); };
    vit.zero_grad();
    loss_of().backward();
    for (auto& [name, p] : vit.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
      std::vector<double> g = p.grad().to_vector<double>();
      double* data = p.data<double>();
      // A few entries spread over the tensor.
      for (int64_t i : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
        const double saved = data[i], h = 1e-6;
        double up, down;
        {
          NoGradGuard ng;
          data[i] = saved + h;
          up = loss_of().item();
          data[i] = saved - h;
          down = loss_of().item();
          data[i] = saved;
        }
        const double numeric = (up - down) / (2 * h);
        EXPECT_NEAR(g[i], numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << "[" << i << "]";
      }
    }
  }
}

TEST(ViT, TinyModelLearnsTwoFashionMnistClasses) {
  const std::string dir = default_fashion_mnist_dir();
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  // Pullover (2) against Trouser (1): from the test part (smaller to load); 512 to train, 200 held out.
  ImageSet all = load_fashion_mnist(dir, DataPart::test);
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < all.count && picked.size() < 712; ++i)
    if (all.labels[i] == 1 || all.labels[i] == 2) picked.push_back(i);
  ImageSet two = subset(all, picked);
  for (auto& l : two.labels) l = l == 1 ? 0 : 1;
  two.num_classes = 2;
  std::vector<int64_t> train_idx(512), held_idx(200);
  for (int64_t i = 0; i < 512; ++i) train_idx[i] = i;
  for (int64_t i = 0; i < 200; ++i) held_idx[i] = 512 + i;
  ImageSet train = subset(two, train_idx), held = subset(two, held_idx);

  RngStream rng(4, "init");
  ViTOptions o;
  o.num_classes = 2;
  o.patch_size = 7;
  o.dim = 16;
  o.depth = 1;
  o.num_heads = 2;
  VisionTransformer vit(o, rng);
  optim::AdamW opt(vit.named_parameters(), {.lr = 3e-3, .weight_decay = 0.0});
  ImageLoader loader(train, 32, {}, 4);
  for (int step = 0; step < 40; ++step) {
    Batch b = loader.next();
    Tensor loss = cross_entropy(logits_of(vit, b.images), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  NoGradGuard ng;
  vit.eval();
  Batch b = batch_range(held, 0, 200);
  std::vector<int64_t> pred = argmax(logits_of(vit, b.images), 1).to_vector<int64_t>();
  std::vector<int64_t> truth = b.labels.to_vector<int64_t>();
  int correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  EXPECT_GT(correct, 170) << "held-out accuracy " << correct / 200.0 << " (chance 0.5)";
}

namespace {

// A tiny ViT whose block 1 is a real MoE layer.
std::shared_ptr<VisionTransformer> tiny_moe_vit(const moe::MoEConfig& mc, DType dtype, RngStream& rng) {
  ViTOptions o = tiny_options(PatchEmbedKind::conv, true);
  o.moe_layers = {1};
  o.dtype = dtype;
  moe::MoELayerOptions mo{.d_model = o.dim, .d_ff = 16, .seq_len = o.num_tokens(), .init = o.init, .dtype = dtype};
  return std::make_shared<VisionTransformer>(o, rng, [&](int64_t, RngStream& r) {
    return std::make_shared<moe::MoELayer>(mc, mo, r);
  });
}

}  // namespace

TEST(ViT, PerPatchMapHasOneExpertPerPatchForEveryImage) {
  for (int64_t k : {1, 2}) {
    moe::MoEConfig mc;
    mc.num_experts = 3;
    mc.top_k = k;
    RngStream rng(5, "init");
    auto vit = tiny_moe_vit(mc, DType::f32, rng);
    const int64_t images = 6;
    nn::ForwardContext ctx;
    moe::RoutingLog log(true);
    ctx.routing = &log;
    vit->forward(rand_normal({images, 1, 8, 8}, 0, 1, rng), ctx);
    auto layers = moe::find_moe_layers(*vit);
    ASSERT_EQ(layers.size(), 1u);
    EXPECT_EQ(layers[0].first, "blocks.1.moe");
    EXPECT_EQ(layers[0].second->path(), "blocks.1.moe");
    ASSERT_NE(log.record("blocks.1.moe"), nullptr);
    const moe::RoutingRecord& rec = *log.record("blocks.1.moe");
    PatchExpertMap map = patch_expert_map(rec, images, vit->options.num_tokens(), 1, vit->options.grid_size());
    ASSERT_EQ(map.experts.size(), static_cast<size_t>(images * 2 * 2));
    for (int64_t b = 0; b < images; ++b)
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t c = 0; c < 2; ++c) {
          const int32_t e = map.at(b, r, c);
          EXPECT_GE(e, 0) << "image " << b << " patch " << r << "," << c;
          EXPECT_LT(e, 3);
          // The chosen expert is one of the token's routed experts.
          const int64_t t = b * 5 + 1 + r * 2 + c;
          bool routed = false;
          for (int64_t s = rec.token_offsets[t]; s < rec.token_offsets[t + 1]; ++s) routed |= rec.slot_expert[s] == e;
          EXPECT_TRUE(routed);
        }
  }
}

TEST(ViT, GradientsThroughMoELayersMatchFiniteDifferences) {
  moe::MoEConfig mc;
  mc.num_experts = 3;
  mc.top_k = 2;
  mc.switch_loss = 0.0;
  RngStream rng(6, "init");
  auto vit = tiny_moe_vit(mc, DType::f64, rng);
  Tensor images = rand_normal({2, 1, 8, 8}, 0, 1, rng, DType::f64);
  Tensor probe = rand_normal({2, 3}, 0, 1, rng, DType::f64);
  auto loss_of = [&]() { return sum(logits_of(*vit, images) * probe); };
  vit->zero_grad();
  loss_of().backward();
  for (const std::string name : {"blocks.1.moe.router.weight", "blocks.1.moe.experts.w1", "blocks.1.moe.experts.w2",
                                 "blocks.0.attn.qkv.weight", "patch_embed.proj.weight"}) {
    Tensor p = vit->tensor(name);
    ASSERT_TRUE(p.grad().defined()) << name;
    std::vector<double> g = p.grad().to_vector<double>();
    double* data = p.data<double>();
    for (int64_t i : {int64_t{0}, p.numel() / 3, p.numel() - 1}) {
      const double saved = data[i], h = 1e-6;
      double up, down;
      {
        NoGradGuard ng;
        data[i] = saved + h;
        up = loss_of().item();
        data[i] = saved - h;
        down = loss_of().item();
        data[i] = saved;
      }
      // A tiny step does not change which experts are chosen (ties are measure-zero).
      EXPECT_NEAR(g[i], (up - down) / (2 * h), 1e-6 + 1e-5 * std::abs(g[i])) << name << "[" << i << "]";
    }
  }
}
