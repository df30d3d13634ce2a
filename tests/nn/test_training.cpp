// End-to-end learning checks (deterministic seeds, a few seconds each): a two-layer MLP fits a
// nonlinear regression and a 3-class classification; a one-block transformer learns to reverse sequences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numbers>

#include "core/autograd/autograd.h"
#include "core/nn/layers.h"
#include "core/nn/mlp.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"
#include "core/optim/clip.h"
#include "core/optim/optimizer.h"
#include "core/optim/schedule.h"

using namespace moelab;
using namespace moelab::nn;

namespace {

// x (N, 4) ~ N(0, 1) -> y = sin(2 x0) x1 + 0.5 x2^2 - x3, shape (N, 1)
void regression_data(int64_t n, RngStream& rng, Tensor& x, Tensor& y) {
  x = rand_normal(Shape{n, 4}, 0, 1, rng);
  std::vector<float> xv = x.to_vector<float>(), yv(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* r = &xv[static_cast<size_t>(4 * i)];
    yv[static_cast<size_t>(i)] = std::sin(2 * r[0]) * r[1] + 0.5f * r[2] * r[2] - r[3];
  }
  y = Tensor::from_vector(yv, Shape{n, 1});
}

}  // namespace

TEST(Training, MlpFitsNonlinearRegression) {
  RngStream init(1, "init"), data(1, "data");
  MlpOptions mo;
  mo.dim = 4;
  mo.hidden = 64;
  mo.activation = Activation::gelu_tanh;
  MLP mlp(mo, init);
  // fc2 maps to 4 outputs; a Linear head reads the regression target.
  Linear head(4, 1, true, init);
  Tensor x, y, xt, yt;
  regression_data(512, data, x, y);
  regression_data(512, data, xt, yt);
  auto params = mlp.named_parameters();
  for (auto& [n, p] : head.named_parameters()) params.emplace_back("head." + n, p);
  optim::AdamW opt(params, optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.0});
  optim::LrSchedule sched{optim::ScheduleKind::cosine, 1e-2, 1e-4, 20, 400};
  auto predict = [&](const Tensor& in) { return head.forward(mlp.forward(in)); };
  double first = mse_loss(predict(x), y).item(), variance = mse_loss(Tensor::zeros(Shape{512, 1}), yt).item();
  for (int step = 0; step < 400; ++step) {
    opt.set_lr(sched.lr_at(step));
    opt.zero_grad();
    mse_loss(predict(x), y).backward();
    opt.step();
  }
  double train = mse_loss(predict(x), y).item();
  NoGradGuard ng;
  double test = mse_loss(predict(xt), yt).item();
  std::printf("regression: mse %.4f -> train %.4f, held-out %.4f (target mean square %.3f)\n", first, train, test,
              variance);
  // The target's mean square is about 2.1; the fit reaches about 0.03 (train) and 0.035 (held out).
  EXPECT_GT(first, 1.0);
  EXPECT_GT(variance, 1.5);
  EXPECT_LT(train, 0.05) << "first " << first;
  EXPECT_LT(test, 0.25) << "train " << train;
}

TEST(Training, MlpClassifiesThreeRings) {
  // Points on rings of radius 1, 2, 3 (plus noise), labelled by ring: not linearly separable.
  RngStream init(2, "init"), data(2, "data");
  const int64_t n = 600;
  std::vector<float> xv;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = i % 3;
    double angle = 2 * std::numbers::pi * data.uniform(), r = (c + 1) + 0.15 * data.normal();
    xv.push_back(static_cast<float>(r * std::cos(angle)));
    xv.push_back(static_cast<float>(r * std::sin(angle)));
    labels.push_back(c);
  }
  Tensor x = Tensor::from_vector(xv, Shape{n, 2}), target = Tensor::from_vector(labels, Shape{n});
  Linear fc1(2, 32, true, init), fc2(32, 3, true, init);
  auto params = fc1.named_parameters();
  for (auto& [nm, p] : fc2.named_parameters()) params.emplace_back("fc2." + nm, p);
  optim::SGD opt(params, optim::SgdOptions{.lr = 0.1, .momentum = 0.9});
  auto logits = [&] { return fc2.forward(relu(fc1.forward(x))); };
  double first = cross_entropy(logits(), target).item();
  for (int step = 0; step < 400; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(logits(), target);
    loss.backward();
    optim::clip_grad_norm(fc1.parameters(), 5.0);
    opt.step();
  }
  Tensor out = logits();
  double final_loss = cross_entropy(out, target).item();
  std::vector<int64_t> pred = argmax(out, 1).to_vector<int64_t>();
  int correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += pred[static_cast<size_t>(i)] == labels[static_cast<size_t>(i)];
  std::printf("rings: cross-entropy %.4f -> %.4f, accuracy %d/%lld\n", first, final_loss, correct,
              static_cast<long long>(n));
  EXPECT_NEAR(first, std::log(3.0), 0.5);
  EXPECT_LT(final_loss, 0.15);
  EXPECT_GE(correct, 0.95 * n);
}

namespace {
// Token + learned position embeddings, one transformer block, a final norm and a vocabulary head.
class TinySequenceModel : public Module {
 public:
  TinySequenceModel(int64_t vocab, int64_t seq_len, int64_t dim, RngStream& rng) : Module("TinySequenceModel") {
    InitOptions init{InitScheme::trunc_normal, 0.02};
    tok = register_module("tok", std::make_shared<Embedding>(vocab, dim, rng, init));
    pos = register_parameter("pos", init_embedding(Shape{seq_len, dim}, init, rng, DType::f32));
    TransformerBlockOptions o;
    o.dim = dim;
    o.num_heads = 2;
    o.init = init;
    block = register_module("block", std::make_shared<TransformerBlock>(o, rng));
    norm = register_module("norm", std::make_shared<LayerNorm>(dim));
    head = register_module("head", std::make_shared<Linear>(dim, vocab, true, rng, init));
  }
  // ids (B, T) -> logits (B, T, vocab)
  Tensor forward(const Tensor& ids) override {
    Tensor h = tok->forward(ids) + pos;
    ForwardContext ctx;
    return head->forward(norm->forward(block->forward(h, ctx)));
  }
  std::shared_ptr<Embedding> tok;
  Tensor pos;
  std::shared_ptr<TransformerBlock> block;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;
};
}  // namespace

TEST(Training, TransformerBlockLearnsToReverse) {
  const int64_t vocab = 8, T = 8, dim = 32, batch = 32;
  RngStream init(3, "init"), data(3, "data");
  TinySequenceModel model(vocab, T, dim, init);
  optim::AdamW opt(model.named_parameters(), optim::AdamWOptions{.lr = 3e-3, .weight_decay = 0.01});
  optim::LrSchedule sched{optim::ScheduleKind::cosine, 3e-3, 3e-4, 30, 300};
  auto make_batch = [&](Tensor& ids, Tensor& target) {
    std::vector<int64_t> in(static_cast<size_t>(batch * T)), out(in.size());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < T; ++t) in[static_cast<size_t>(b * T + t)] = static_cast<int64_t>(data.below(vocab));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < T; ++t) out[static_cast<size_t>(b * T + t)] = in[static_cast<size_t>(b * T + T - 1 - t)];
    ids = Tensor::from_vector(in, Shape{batch, T});
    target = Tensor::from_vector(out, Shape{batch, T});
  };
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor ids, target;
    make_batch(ids, target);
    opt.set_lr(sched.lr_at(step));
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(ids), target);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  model.eval();
  NoGradGuard ng;
  Tensor ids, target;
  make_batch(ids, target);
  Tensor logits = model.forward(ids);
  double held_out = cross_entropy(logits, target).item();
  std::vector<int64_t> pred = argmax(logits, -1).to_vector<int64_t>(), want = target.to_vector<int64_t>();
  int correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == want[i];
  std::printf("reverse: cross-entropy %.4f -> held-out %.4f, token accuracy %d/%zu\n", first, held_out, correct,
              pred.size());
  EXPECT_NEAR(first, std::log(8.0), 0.3);
  EXPECT_LT(held_out, 0.1) << "last training loss " << last;
  EXPECT_GE(correct, static_cast<int>(0.98 * pred.size()));
}
