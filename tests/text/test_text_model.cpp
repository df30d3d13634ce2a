// The text transformer (text/model): no future leak, KV-cache decoding equals the full forward (dense and
// MoE), the tied head, pooled encoder features over real tokens only, hash routing by token id inside the LM,
// a tiny LM that learns a repeating pattern, and bits per byte on a hand-computed case.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/autograd/autograd.h"
#include "core/moe/moe_config.h"
#include "core/moe/routing_stats.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"
#include "text/model/bits_per_byte.h"
#include "text/model/text_transformer.h"

using namespace moelab;
using namespace moelab::text;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

TextTransformerOptions small_options(PositionKind pos) {
  TextTransformerOptions o;
  o.vocab_size = 23;
  o.dim = 16;
  o.depth = 3;
  o.num_heads = 2;
  o.mlp_ratio = 2.0;
  o.positions = pos;
  o.max_len = 32;
  return o;
}

moe::MoEConfig moe_config(const std::string& router) {
  moe::MoEConfig c;
  c.num_experts = 4;
  c.top_k = router == "hash" ? 1 : 2;
  c.router = router;
  return c;
}

std::shared_ptr<TextTransformer> make_model(PositionKind pos, const std::string& router, uint64_t seed = 1) {
  TextTransformerOptions o = small_options(pos);
  RngStream rng(seed, "init");
  if (router.empty()) return std::make_shared<TextTransformer>(o, rng);
  o.moe_layers = {0, 2};
  return std::make_shared<TextTransformer>(o, rng, moe_layer_factory(moe_config(router), o, 12));
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  RngStream rng(seed, "tokens");
  std::vector<int64_t> ids(static_cast<size_t>(B * T));
  for (auto& id : ids) id = static_cast<int64_t>(rng.below(static_cast<uint64_t>(V)));
  return Tensor::from_vector(ids, Shape{B, T});
}

Tensor logits_of(TextTransformer& m, const Tensor& tokens) {
  nn::Batch b;
  b.tokens = tokens;
  b.token_ids = tokens;
  nn::ForwardContext ctx(b);
  return m.forward(tokens, ctx);
}

struct Variant {
  PositionKind pos;
  std::string router;  // "" = dense
};
const Variant kVariants[] = {{PositionKind::rotary, ""},
                             {PositionKind::learned, ""},
                             {PositionKind::rotary, "top_k"},
                             {PositionKind::learned, "hash"}};

TEST(TextTransformer, NoFutureLeak) {
  for (const Variant& v : kVariants) {
    auto model = make_model(v.pos, v.router);
    model->eval();
    NoGradGuard no_grad;
    const int64_t T = 12;
    Tensor tokens = random_tokens(2, T, 23, 3);
    Tensor base = logits_of(*model, tokens);
    for (int64_t t : {0, 5, 10}) {
      std::vector<int64_t> ids = tokens.to_vector<int64_t>();
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t u = t + 1; u < T; ++u) ids[static_cast<size_t>(b * T + u)] = (ids[static_cast<size_t>(b * T + u)] + 7) % 23;
      Tensor changed = logits_of(*model, Tensor::from_vector(ids, Shape{2, T}));
      EXPECT_LT(max_abs_diff(base.slice(1, 0, t + 1), changed.slice(1, 0, t + 1)), 1e-6) << "t " << t << " " << v.router;
      EXPECT_GT(max_abs_diff(base.slice(1, t + 1, T), changed.slice(1, t + 1, T)), 1e-4);  // the future did change
    }
  }
}

TEST(TextTransformer, IncrementalDecodingMatchesFullForward) {
  for (const Variant& v : kVariants) {
    auto model = make_model(v.pos, v.router);
    model->eval();
    NoGradGuard no_grad;
    const int64_t T = 11;
    Tensor tokens = random_tokens(2, T, 23, 4);
    Tensor full = logits_of(*model, tokens);
    DecodeState state = model->new_decode_state();
    std::vector<Tensor> parts;
    // A prompt of 4 tokens, then one token at a time (as generation does), then a chunk of 2.
    const std::vector<std::pair<int64_t, int64_t>> chunks = {{0, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 9}, {9, 10}, {10, 11}};
    for (auto [a, e] : chunks) {
      nn::Batch b;
      b.tokens = tokens.slice(1, a, e).contiguous();
      b.token_ids = b.tokens;
      nn::ForwardContext ctx(b);
      parts.push_back(model->forward_incremental(b.tokens, ctx, state));
    }
    EXPECT_EQ(state.length(), T);
    EXPECT_LT(max_abs_diff(full, concat(parts, 1)), 1e-5) << v.router;
  }
}

TEST(TextTransformer, HeadIsTiedToTheEmbedding) {
  auto model = make_model(PositionKind::rotary, "");
  auto names = model->named_parameters();
  for (const auto& [name, t] : names) EXPECT_EQ(name.find("head"), std::string::npos) << name;
  // logits = h E^T exactly.
  NoGradGuard no_grad;
  Tensor tokens = random_tokens(1, 5, 23, 5);
  nn::ForwardContext ctx;
  Tensor h = model->hidden_states(tokens, ctx);
  nn::ForwardContext ctx2;
  EXPECT_LT(max_abs_diff(model->forward(tokens, ctx2), matmul(h, model->embed->weight.transpose(0, 1))), 1e-6);
}

TEST(TextTransformer, EncoderPoolsRealTokensOnly) {
  TextTransformerOptions o = small_options(PositionKind::rotary);
  o.causal = false;
  RngStream rng(2, "init");
  TextTransformer model(o, rng);
  NoGradGuard no_grad;
  Tensor tokens = random_tokens(2, 6, 23, 6);
  const std::vector<int64_t> mask_v = {1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1};
  nn::Batch b;
  b.padding_mask = Tensor::from_vector(mask_v, Shape{2, 6});
  nn::ForwardContext ctx(b);
  Tensor pooled = model.encode(tokens, ctx);
  ASSERT_EQ(pooled.shape(), (Shape{2, 16}));
  // Sequence 0 pools like its 4 real tokens alone (padding hidden from attention and from the mean).
  nn::ForwardContext alone_ctx;
  Tensor alone = model.encode(tokens.slice(0, 0, 1).slice(1, 0, 4).contiguous(), alone_ctx);
  EXPECT_LT(max_abs_diff(pooled.slice(0, 0, 1), alone), 1e-5);
  // Sequence 1 (no padding) is the plain mean of its hidden states.
  nn::ForwardContext h_ctx(b);
  Tensor h = model.hidden_states(tokens, h_ctx);
  EXPECT_LT(max_abs_diff(pooled.slice(0, 1, 2), mean(h.slice(0, 1, 2), {1})), 1e-6);
  // Changing a padded token changes nothing.
  std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  ids[5] = (ids[5] + 1) % 23;
  nn::ForwardContext ctx3(b);
  EXPECT_LT(max_abs_diff(pooled, model.encode(Tensor::from_vector(ids, Shape{2, 6}), ctx3)), 1e-6);
}

TEST(TextTransformer, HashRoutingFollowsTokenIds) {
  auto model = make_model(PositionKind::rotary, "hash");
  model->eval();
  NoGradGuard no_grad;
  Tensor tokens = random_tokens(3, 12, 23, 7);
  nn::Batch b;
  b.tokens = tokens;
  b.token_ids = tokens;
  moe::RoutingLog log(true);
  nn::ForwardContext ctx(b);
  ctx.routing = &log;
  model->forward(tokens, ctx);
  const std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  int layers = 0;
  for (const auto& [path, tally] : log.layers()) {
    const moe::RoutingRecord* rec = log.record(path);
    ASSERT_NE(rec, nullptr);
    const std::vector<int64_t> top = moe::top_expert_per_token(*rec);
    ASSERT_EQ(top.size(), ids.size());
    std::map<int64_t, int64_t> expert_of_id;
    std::set<int64_t> used;
    for (size_t t = 0; t < ids.size(); ++t) {
      auto [it, fresh] = expert_of_id.emplace(ids[t], top[t]);
      EXPECT_EQ(it->second, top[t]) << path << ": token id " << ids[t] << " went to two experts";
      used.insert(top[t]);
    }
    EXPECT_GT(used.size(), 1u) << path;  // ids spread over experts, not all to one
    ++layers;
  }
  EXPECT_EQ(layers, 2);
}

TEST(TextTransformer, TinyLmLearnsRepeatingPattern) {
  // The sequence 0 1 2 ... 6 repeated, from random offsets: after the first token the next is determined.
  for (const std::string router : {"", "top_k"}) {
    TextTransformerOptions o = small_options(PositionKind::rotary);
    o.vocab_size = 7;
    o.depth = 2;
    RngStream rng(11, "init");
    if (!router.empty()) o.moe_layers = {1};
    TextTransformer model(o, rng, router.empty() ? FfnFactory{} : moe_layer_factory(moe_config(router), o, 16));
    optim::AdamW opt(model.named_parameters(), {.lr = 1e-2, .weight_decay = 0.0});
    RngStream data(12, "data");
    auto batch_of = [&](int64_t B, int64_t T) {
      std::vector<int64_t> in(static_cast<size_t>(B * T)), out(in.size());
      for (int64_t b = 0; b < B; ++b) {
        const int64_t start = static_cast<int64_t>(data.below(7));
        for (int64_t t = 0; t < T; ++t) {
          in[static_cast<size_t>(b * T + t)] = (start + t) % 7;
          out[static_cast<size_t>(b * T + t)] = (start + t + 1) % 7;
        }
      }
      return std::pair{Tensor::from_vector(in, Shape{B, T}), Tensor::from_vector(out, Shape{B, T})};
    };
    double first = 0, last = 0;
    for (int step = 0; step < 150; ++step) {
      auto [x, y] = batch_of(8, 16);
      opt.zero_grad();
      nn::Batch b;
      b.tokens = x;
      nn::ForwardContext ctx(b);
      Tensor loss = cross_entropy(model.forward(x, ctx), y);
      if (step == 0) first = loss.item();
      if (Tensor aux = ctx.total_aux_loss(); aux.defined()) loss = loss + aux;
      loss.backward();
      opt.step();
    }
    model.eval();
    NoGradGuard no_grad;
    auto [x, y] = batch_of(8, 16);
    nn::ForwardContext ctx;
    Tensor logits = model.forward(x, ctx);
    last = cross_entropy(logits.slice(1, 1, 16), y.slice(1, 1, 16)).item();  // position 0 has no context
    EXPECT_GT(first, 1.5) << router;  // about ln 7 at the start
    EXPECT_LT(last, 0.02) << router;
  }
}

TEST(BitsPerByte, HandComputedCase) {
  // Two domains. Tokens: id 5 (3 bytes), id 6 (1 byte), id 2 (a control id, 0 bytes), one padding target.
  const std::vector<int32_t> piece_bytes = {0, 0, 0, 0, 0, 3, 1};
  ByteLossTally t(2);
  const std::vector<double> nats = {std::log(2.0), std::log(4.0), std::log(8.0), 9.0};
  const std::vector<int64_t> targets = {5, 6, 2, -100}, domains = {0, 0, 1, 1};
  t.add_tokens(nats, targets, domains, piece_bytes);
  // domain 0: (1 + 2) bits over 4 bytes; domain 1: 3 bits over 0 bytes; all: 6 bits over 4 bytes.
  EXPECT_NEAR(t.bits_per_byte(0), 0.75, 1e-12);
  EXPECT_TRUE(std::isnan(t.bits_per_byte(1)));
  EXPECT_NEAR(t.bits_per_byte(), 1.5, 1e-12);
  EXPECT_EQ(t.total_tokens(), 3);
  EXPECT_NEAR(t.nats_per_token(), std::log(64.0) / 3, 1e-12);
  EXPECT_THROW(t.add(2, 1.0, 1), Error);
  const std::vector<int64_t> bad = {7, 5, 5, 5};
  EXPECT_THROW(t.add_tokens(nats, bad, domains, piece_bytes), Error);
}

}  // namespace
