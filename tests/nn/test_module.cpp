// Module naming and registration, modes, device/dtype moves, strict state dicts and safetensors files.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/autograd/autograd.h"
#include "core/moe/routing_stats.h"
#include "core/nn/layers.h"
#include "core/nn/mlp.h"
#include "core/nn/module.h"
#include "core/nn/tensor_file.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"

using namespace moelab;
using namespace moelab::nn;

namespace {

std::vector<std::string> names_of(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

// A toy model: embedding, a list of two blocks with custom children, a head, one buffer.
class Toy : public Module {
 public:
  explicit Toy(RngStream& rng) : Module("Toy") {
    embed = register_module("embed", std::make_shared<Embedding>(10, 4, rng));
    blocks = register_module("blocks", std::make_shared<ModuleList>());
    for (int i = 0; i < 2; ++i) {
      MlpOptions o;
      o.dim = 4;
      o.hidden = 6;
      blocks->push_back(std::make_shared<MLP>(o, rng));
    }
    head = register_module("head", std::make_shared<Linear>(4, 3, false, rng));
    counts = register_buffer("counts", Tensor::zeros(Shape{3}));
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<Linear> head;
  Tensor counts;
};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("moelab_nn_" + name)).string();
}

}  // namespace

TEST(Module, DottedNamesInRegistrationOrder) {
  RngStream rng(1, "init");
  Toy toy(rng);
  std::vector<std::string> expect = {"embed.weight",      "blocks.0.fc1.weight", "blocks.0.fc1.bias",
                                     "blocks.0.fc2.weight", "blocks.0.fc2.bias", "blocks.1.fc1.weight",
                                     "blocks.1.fc1.bias", "blocks.1.fc2.weight", "blocks.1.fc2.bias",
                                     "head.weight"};
  EXPECT_EQ(names_of(toy.named_parameters()), expect);
  EXPECT_EQ(names_of(toy.named_buffers()), std::vector<std::string>{"counts"});
  EXPECT_EQ(toy.num_parameters(), 10 * 4 + 2 * (4 * 6 + 6 + 6 * 4 + 4) + 3 * 4);
  EXPECT_EQ(toy.parameters().size(), 10u);
  for (const auto& p : toy.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
  }
  EXPECT_FALSE(toy.counts.requires_grad());
  // The registry and the members share tensors.
  EXPECT_EQ(toy.tensor("head.weight").impl(), toy.head->weight.impl());
  EXPECT_EQ(toy.tensor("blocks.1.fc2.bias").impl(), toy.blocks->at<MLP>(1)->fc2->bias.impl());
  std::vector<std::string> modules;
  for (auto& [p, m] : toy.named_modules()) modules.push_back(p + ":" + m->type_name());
  EXPECT_EQ(modules.front(), ":Toy");
  EXPECT_EQ(modules.size(), 1u + 1 + 1 + 2 * 3 + 1);
  EXPECT_NE(toy.summary().find("blocks.0.fc1 (Linear) weight(6, 4)"), std::string::npos) << toy.summary();
}

TEST(Module, RegistrationErrors) {
  RngStream rng(1, "init");
  Toy toy(rng);
  EXPECT_THROW(toy.register_parameter("head", Tensor::zeros(Shape{1})), Error);      // taken by a child
  EXPECT_THROW(toy.register_parameter("a.b", Tensor::zeros(Shape{1})), Error);       // dotted
  EXPECT_THROW(toy.register_buffer("counts", Tensor::zeros(Shape{1})), Error);       // duplicate
  EXPECT_THROW(toy.register_parameter("ids", Tensor::zeros(Shape{1}, DType::i64)), Error);  // not float
  EXPECT_THROW(toy.child("nope"), Error);
  EXPECT_THROW(toy.tensor("blocks.7.fc1.weight"), Error);
  EXPECT_THROW(toy.blocks->at<Linear>(0), Error);  // wrong type
  EXPECT_THROW(toy.forward(Tensor::zeros(Shape{1})), Error);  // Toy has no one-tensor forward
}

TEST(Module, TrainEvalPropagatesAndZeroGrad) {
  RngStream rng(2, "init");
  Toy toy(rng);
  toy.eval();
  for (auto& [p, m] : toy.named_modules()) EXPECT_FALSE(m->is_training()) << p;
  toy.train();
  for (auto& [p, m] : toy.named_modules()) EXPECT_TRUE(m->is_training()) << p;
  // A child added to an eval-mode parent follows the parent's mode.
  toy.eval();
  toy.blocks->push_back(std::make_shared<Linear>(4, 4, true, rng));
  EXPECT_FALSE(toy.blocks->operator[](2).is_training());

  Tensor x = Tensor::ones(Shape{2, 4});
  sum(toy.head->forward(x)).backward();
  ASSERT_TRUE(toy.head->weight.grad().defined());
  toy.zero_grad();
  EXPECT_FALSE(toy.head->weight.grad().defined());
}

TEST(Module, ToDTypeKeepsHandles) {
  RngStream rng(3, "init");
  Linear lin(3, 2, true, rng);
  Tensor handle = lin.weight;
  std::vector<float> before = lin.weight.to_vector<float>();
  lin.to(DType::f64);
  EXPECT_EQ(handle.dtype(), DType::f64);
  EXPECT_EQ(lin.tensor("weight").dtype(), DType::f64);
  EXPECT_TRUE(handle.requires_grad());
  std::vector<double> after = handle.to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(static_cast<double>(before[i]), after[i]);
  Tensor y = lin.forward(Tensor::ones(Shape{1, 3}, DType::f64));
  EXPECT_EQ(y.dtype(), DType::f64);
  lin.to(Device::cpu());  // no-op on the host
  EXPECT_EQ(handle.device(), Device::cpu());
}

TEST(Module, ShareStateWithMakesAReplicaWithItsOwnGradients) {
  RngStream rng_a(5, "init"), rng_b(6, "init");
  Linear master(3, 2, true, rng_a), replica(3, 2, true, rng_b);
  replica.share_state_with(master);
  Tensor x = Tensor::from_vector<float>({1, -2, 0.5f, 3, 0.25f, -1}, Shape{2, 3});
  // Same weights: the same outputs, and an in-place update of the master (an optimizer step) shows in both.
  EXPECT_EQ(master.forward(x).to_vector<float>(), replica.forward(x).to_vector<float>());
  {
    NoGradGuard ng;
    master.weight.detach().fill_(0.5);
  }
  EXPECT_EQ(master.forward(x).to_vector<float>(), replica.forward(x).to_vector<float>());
  // Gradients stay apart.
  sum(replica.forward(x)).backward();
  EXPECT_TRUE(replica.weight.grad().defined());
  EXPECT_FALSE(master.weight.grad().defined());
  // Another architecture is refused, naming the first difference.
  Linear wider(4, 2, true, rng_b);
  try {
    wider.share_state_with(master);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight"), std::string::npos) << e.what();
  }
}

TEST(Module, ReplaceChildKeepsName) {
  RngStream rng(4, "init");
  Toy toy(rng);
  toy.blocks->replace_module("1", std::make_shared<Linear>(4, 4, false, rng));
  auto names = names_of(toy.named_parameters());
  EXPECT_NE(std::find(names.begin(), names.end(), "blocks.1.weight"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "blocks.1.fc1.weight"), names.end());
  EXPECT_THROW(toy.replace_module("nope", std::make_shared<Linear>(1, 1, false, rng)), Error);
}

TEST(StateDict, RoundTripThroughSafetensors) {
  RngStream rng_a(5, "init"), rng_b(6, "init");
  Toy a(rng_a), b(rng_b);
  a.counts.fill_(7.0);
  std::string path = temp_path("roundtrip.safetensors");
  a.save(path, {{"format", "pt"}});
  io::SafetensorsFile f = io::read_safetensors(path);
  EXPECT_EQ(f.metadata_value("format"), "pt");
  EXPECT_EQ(f.get("blocks.0.fc1.weight").shape_str(), "[6, 4]");
  ASSERT_NE(a.head->weight.to_vector<float>(), b.head->weight.to_vector<float>());
  Tensor b_handle = b.head->weight;
  b.load(path);
  for (const auto& [n, t] : a.state_dict()) EXPECT_EQ(t.to_vector<float>(), b.tensor(n).to_vector<float>()) << n;
  EXPECT_EQ(b_handle.to_vector<float>(), a.head->weight.to_vector<float>());  // loaded in place
  EXPECT_EQ(b.counts.to_vector<float>(), std::vector<float>(3, 7.0f));
  std::filesystem::remove(path);
}

TEST(StateDict, StrictErrorsNameTheTensors) {
  RngStream rng(7, "init");
  Toy toy(rng);
  NamedTensors sd = toy.state_dict();
  auto message = [&](const NamedTensors& s) {
    try {
      toy.load_state_dict(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  NamedTensors missing(sd.begin() + 1, sd.end());
  EXPECT_NE(message(missing).find("missing: embed.weight"), std::string::npos) << message(missing);
  NamedTensors extra = sd;
  extra.emplace_back("blocks.2.fc1.weight", Tensor::zeros(Shape{6, 4}));
  EXPECT_NE(message(extra).find("unexpected: blocks.2.fc1.weight"), std::string::npos);
  NamedTensors wrong = sd;
  wrong[9].second = Tensor::zeros(Shape{4, 3});  // head.weight is (3, 4)
  std::string m = message(wrong);
  EXPECT_NE(m.find("shape mismatch: head.weight expects (3, 4), got (4, 3)"), std::string::npos) << m;
  // A failed load changes nothing.
  std::vector<float> head = toy.head->weight.to_vector<float>();
  EXPECT_EQ(toy.head->weight.to_vector<float>(), head);
  // Loading from a file names the file.
  std::string path = temp_path("strict.safetensors");
  save_tensors(path, missing);
  try {
    toy.load(path);
    FAIL() << "load of an incomplete file succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("missing: embed.weight"), std::string::npos);
  }
  std::filesystem::remove(path);
  // Converting dtypes on load: f64 values into f32 parameters.
  NamedTensors as_f64;
  for (auto& [n, t] : sd) as_f64.emplace_back(n, t.to(DType::f64));
  toy.load_state_dict(as_f64);
  EXPECT_EQ(toy.head->weight.dtype(), DType::f32);
}

TEST(Init, SchemesAndDeterminism) {
  RngStream r1(11, "init"), r2(11, "init");
  Linear a(64, 32, true, r1), b(64, 32, true, r2);
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  double bound = 1.0 / 8.0;
  double maxabs = 0, sumsq = 0;
  for (float w : a.weight.to_vector<float>()) {
    maxabs = std::max(maxabs, std::abs(double(w)));
    sumsq += double(w) * w;
  }
  EXPECT_LE(maxabs, bound);
  EXPECT_NEAR(sumsq / (64 * 32), bound * bound / 3, 0.1 * bound * bound / 3);  // U(-b, b) variance b^2/3
  for (float w : a.bias.to_vector<float>()) EXPECT_LE(std::abs(w), bound);

  RngStream r3(12, "init");
  InitOptions tn{InitScheme::trunc_normal, 0.02};
  Linear c(128, 64, true, r3, tn);
  double s2 = 0;
  for (float w : c.weight.to_vector<float>()) {
    EXPECT_LE(std::abs(w), 0.04 + 1e-7);
    s2 += double(w) * w;
  }
  // Truncation at 2 std leaves a std of 0.02 * 0.8796.
  EXPECT_NEAR(std::sqrt(s2 / (128 * 64)), 0.02 * 0.8796, 0.02 * 0.05);
  for (float v : c.bias.to_vector<float>()) EXPECT_EQ(v, 0.0f);

  RngStream r4(13, "init");
  Embedding e(100, 50, r4);
  double m = 0, v = 0;
  for (float w : e.weight.to_vector<float>()) m += w, v += double(w) * w;
  EXPECT_NEAR(m / 5000, 0.0, 0.05);
  EXPECT_NEAR(v / 5000, 1.0, 0.08);
  LayerNorm ln(5);
  EXPECT_EQ(ln.weight.to_vector<float>(), std::vector<float>(5, 1.0f));
  EXPECT_EQ(ln.bias.to_vector<float>(), std::vector<float>(5, 0.0f));
}

TEST(Layers, DropoutTrainAndEval) {
  // Draws come from the forward context, keyed by (draw key, module path): siblings differ, replicas agree.
  ModuleList pair;
  pair.push_back(std::make_shared<Dropout>(0.25));
  pair.push_back(std::make_shared<Dropout>(0.25));
  Module& d = pair[0];
  Module& d2 = pair[1];
  EXPECT_EQ(d.path(), "0");
  Tensor x = Tensor::ones(Shape{4000});
  ForwardContext ctx(Batch{}, 0, 21);
  std::vector<float> y = d.forward(x, ctx).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    if (v == 0) ++zeros;
    else EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
  }
  EXPECT_NEAR(zeros / 4000.0, 0.25, 0.03);
  EXPECT_NE(d2.forward(x, ctx).to_vector<float>(), y);  // sibling dropouts draw different masks
  EXPECT_NE(d.forward(x, ctx).to_vector<float>(), y);   // a second draw in one forward continues the stream
  ForwardContext same_key(Batch{}, 5, 21), other_key(Batch{}, 0, 22);
  EXPECT_EQ(d.forward(x, same_key).to_vector<float>(), y);  // same draw key and path: the same mask
  EXPECT_NE(d.forward(x, other_key).to_vector<float>(), y);
  EXPECT_THROW(Dropout(1.0), Error);
  d.eval();
  EXPECT_EQ(d.forward(x, ctx).to_vector<float>(), std::vector<float>(4000, 1.0f));
}

TEST(Layers, ShapesAndErrors) {
  RngStream rng(22, "init");
  Linear lin(4, 3, true, rng);
  EXPECT_EQ(lin.forward(Tensor::ones(Shape{2, 5, 4})).shape(), (Shape{2, 5, 3}));
  EXPECT_THROW(lin.forward(Tensor::ones(Shape{2, 5})), Error);
  Embedding emb(7, 3, rng);
  EXPECT_EQ(emb.forward(Tensor::from_vector<int64_t>({1, 2, 6, 0}, Shape{2, 2})).shape(), (Shape{2, 2, 3}));
  Conv2d conv(2, 5, 3, 1, 1, true, rng);
  EXPECT_EQ(conv.forward(Tensor::ones(Shape{1, 2, 6, 6})).shape(), (Shape{1, 5, 6, 6}));
  EXPECT_THROW(conv.forward(Tensor::ones(Shape{1, 3, 6, 6})), Error);
  MlpOptions mo;
  mo.dim = 4;
  mo.hidden = 8;
  mo.activation = Activation::silu;
  mo.gated = true;
  MLP swiglu(mo, rng);
  EXPECT_EQ(names_of(swiglu.named_parameters()),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}));
  EXPECT_EQ(swiglu.forward(Tensor::ones(Shape{3, 4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(parse_activation("gelu"), Activation::gelu_tanh);
  EXPECT_THROW(parse_activation("tanhh"), Error);
}

namespace {
// An FFN that reports an auxiliary loss and tallies routing, like an MoE layer does.
class AuxFfn : public Module {
 public:
  explicit AuxFfn(RngStream& rng) : Module("AuxFfn") { fc = register_module("fc", std::make_shared<Linear>(8, 8, true, rng)); }
  Tensor forward(const Tensor& x, ForwardContext& ctx) override {
    Tensor y = fc->forward(x);
    ctx.add_aux_loss(*this, "balance", mean(square(y)), 0.5);
    if (ctx.routing) ctx.routing->layer(path(), 2).forwards += 1;
    return y;
  }
  Tensor forward(const Tensor& x) override {
    ForwardContext ctx;
    return forward(x, ctx);
  }
  std::shared_ptr<Linear> fc;
};

// blocks.0 .. blocks.3, the last with the aux FFN.
class AuxModel : public Module {
 public:
  explicit AuxModel(RngStream& rng) : Module("AuxModel") {
    blocks = register_module("blocks", std::make_shared<ModuleList>());
    TransformerBlockOptions o;
    o.dim = 8;
    o.num_heads = 2;
    for (int i = 0; i < 3; ++i) blocks->push_back(std::make_shared<TransformerBlock>(o, rng));
    o.ffn_name = "moe";
    blocks->push_back(std::make_shared<TransformerBlock>(o, rng, std::make_shared<AuxFfn>(rng)));
  }
  Tensor forward(const Tensor& x, ForwardContext& ctx) override {
    Tensor h = x;
    for (size_t i = 0; i < blocks->size(); ++i) h = (*blocks)[i].forward(h, ctx);
    return h;
  }
  std::shared_ptr<ModuleList> blocks;
};
}  // namespace

TEST(TransformerBlock, PluggableFfnReturnsAuxLosses) {
  RngStream rng(31, "init");
  TransformerBlockOptions o;
  o.dim = 8;
  o.num_heads = 2;
  o.ffn_name = "moe";
  TransformerBlock block(o, rng, std::make_shared<AuxFfn>(rng));
  auto names = names_of(block.named_parameters());
  EXPECT_EQ(names, (std::vector<std::string>{"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                             "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                                             "moe.fc.weight", "moe.fc.bias"}));
  Tensor x = rand_normal(Shape{2, 3, 8}, 0, 1, rng);
  ForwardContext ctx;
  moe::RoutingLog log;
  ctx.routing = &log;
  Tensor y = block.forward(x, ctx);
  EXPECT_EQ(y.shape(), x.shape());
  ASSERT_EQ(ctx.aux_losses().size(), 1u);
  EXPECT_EQ(ctx.aux_losses()[0].module, "moe");
  EXPECT_EQ(ctx.aux_losses()[0].name, "balance");
  EXPECT_EQ(ctx.aux_losses()[0].full_name(), "moe.balance");
  EXPECT_EQ(ctx.aux_losses()[0].weight, 0.5);
  ASSERT_EQ(log.layers().size(), 1u);
  EXPECT_EQ(log.layers()[0].first, "moe");
  EXPECT_EQ(log.layers()[0].second.forwards, 1);

  // Inside a model the terms and the routing are keyed by the full module path.
  AuxModel model(rng);
  ForwardContext model_ctx;
  moe::RoutingLog model_log;
  model_ctx.routing = &model_log;
  model.forward(x, model_ctx);
  ASSERT_EQ(model_ctx.aux_losses().size(), 1u);
  EXPECT_EQ(model_ctx.aux_losses()[0].full_name(), "blocks.3.moe.balance");
  EXPECT_NE(model_log.find("blocks.3.moe"), nullptr);
  EXPECT_EQ(model_log.find("moe"), nullptr);
  // The aux term (weighted) is differentiable into the FFN.
  Tensor total = model_ctx.total_aux_loss();
  EXPECT_EQ(total.dim(), 0);
  EXPECT_NEAR(total.item(), 0.5 * model_ctx.aux_losses()[0].value.item(), 1e-6);
  total.backward();
  EXPECT_TRUE(model.tensor("blocks.3.moe.fc.weight").grad().defined());
  EXPECT_FALSE(total_aux_loss({}).defined());

  // The default dense block names its FFN "mlp" (timm layout) and has no aux terms.
  TransformerBlockOptions d;
  d.dim = 8;
  d.num_heads = 2;
  TransformerBlock dense(d, rng);
  EXPECT_EQ(dense.tensor("mlp.fc1.weight").shape(), (Shape{32, 8}));
  ForwardContext dctx;
  EXPECT_EQ(dense.forward(x, dctx).shape(), x.shape());
  EXPECT_TRUE(dctx.aux_losses().empty());
  // Swapping the FFN keeps the name.
  dense.set_ffn(std::make_shared<AuxFfn>(rng));
  ForwardContext sctx;
  dense.forward(x, sctx);
  EXPECT_EQ(sctx.aux_losses().at(0).full_name(), "mlp.balance");
}

TEST(Batch, SizeIsTheLeadingSizeOfTheFirstDefinedInputAndToKeepsSideInputs) {
  Batch b;
  EXPECT_EQ(b.size(), 0);
  b.targets = Tensor::zeros(Shape{5}, DType::i64);
  EXPECT_EQ(b.size(), 5);
  b.images = Tensor::ones(Shape{3, 1, 2, 2});
  EXPECT_EQ(b.size(), 3);  // inputs before targets
  b.labels = Tensor::from_vector<int64_t>({0, 1, 2}, Shape{3});
  b.num_groups = 2;
  Batch moved = b.to(Device::cpu());
  EXPECT_EQ(moved.images.to_vector<float>(), b.images.to_vector<float>());
  EXPECT_EQ(moved.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(moved.num_groups, 2);
}
