// Generation (text/model/generate.h): sample_token's greedy, top-k and temperature laws; KV-cache
// generation equals recomputing the full forward at every step; the same seed gives the same text.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/moe_config.h"
#include "core/ops/ops.h"
#include "text/model/generate.h"

using namespace moelab;
using namespace moelab::text;

namespace {

TEST(SampleToken, GreedyAndTopOneTakeTheArgmax) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 1.5f};
  RngStream rng(1, "s");
  EXPECT_EQ(sample_token(logits, 0.0, 0, rng), 1);  // ties go to the smaller id
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, 1.0, 1, rng), 1);
}

TEST(SampleToken, TopKNeverDrawsOutsideTheK) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.5f, -2.0f};
  RngStream rng(2, "s");
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 2000; ++i) ++seen[static_cast<size_t>(sample_token(logits, 5.0, 2, rng))];
  EXPECT_EQ(seen[0] + seen[2] + seen[4], 0);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
}

TEST(SampleToken, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f};
  const double temperature = 0.5;
  RngStream rng(3, "s");
  const int n = 40000;
  std::vector<int> seen(3, 0);
  for (int i = 0; i < n; ++i) ++seen[static_cast<size_t>(sample_token(logits, temperature, 0, rng))];
  double z = 0;
  for (float l : logits) z += std::exp(l / temperature);
  for (size_t i = 0; i < 3; ++i) {
    const double p = std::exp(logits[i] / temperature) / z, sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(seen[i] / double(n), p, 5 * sd) << i;  // five standard errors
  }
}

std::shared_ptr<TextTransformer> make_model(PositionKind pos, bool moe) {
  TextTransformerOptions o;
  o.vocab_size = 31;
  o.dim = 16;
  o.depth = 2;
  o.num_heads = 2;
  o.positions = pos;
  o.max_len = 40;
  RngStream rng(5, "init");
  if (!moe) return std::make_shared<TextTransformer>(o, rng);
  o.moe_layers = {1};
  moe::MoEConfig c;
  c.num_experts = 4;
  c.top_k = 2;
  return std::make_shared<TextTransformer>(o, rng, moe_layer_factory(c, o, 16));
}

TEST(Generate, CachedGreedyEqualsFullForwardRecompute) {
  for (PositionKind pos : {PositionKind::rotary, PositionKind::learned})
    for (bool moe : {false, true}) {
      auto model = make_model(pos, moe);
      model->eval();
      const std::vector<int32_t> prompt = {2, 7, 19, 4};
      SamplingOptions so;
      so.max_tokens = 20;
      so.temperature = 0;
      const std::vector<int32_t> cached = generate(*model, prompt, so);
      ASSERT_EQ(cached.size(), 20u);
      // The same by running the whole sequence through the plain forward for every new token.
      NoGradGuard no_grad;
      std::vector<int64_t> seq(prompt.begin(), prompt.end());
      for (size_t i = 0; i < cached.size(); ++i) {
        Tensor tokens = Tensor::from_vector(seq, Shape{1, static_cast<int64_t>(seq.size())});
        nn::Batch b;
        b.tokens = tokens;
        b.token_ids = tokens;
        nn::ForwardContext ctx(b);
        Tensor last = model->forward(tokens, ctx).select(1, static_cast<int64_t>(seq.size()) - 1);
        const int32_t id = static_cast<int32_t>(argmax(last, -1).item());
        ASSERT_EQ(id, cached[i]) << "token " << i << " moe " << moe;
        seq.push_back(id);
      }
    }
}

TEST(Generate, SameSeedSameTextAndStreaming) {
  auto model = make_model(PositionKind::rotary, true);
  model->eval();
  const std::vector<int32_t> prompt = {2, 9};
  SamplingOptions so;
  so.max_tokens = 30;
  so.temperature = 1.5;
  so.top_k = 10;
  so.seed = 4;
  std::vector<int32_t> streamed;
  const std::vector<int32_t> a = generate(*model, prompt, so, [&](int32_t id) { streamed.push_back(id); });
  EXPECT_EQ(a, streamed);
  EXPECT_EQ(a, generate(*model, prompt, so));
  so.seed = 5;
  EXPECT_NE(a, generate(*model, prompt, so));  // 30 draws at temperature 1.5 from 10 tokens
}

TEST(Generate, StopsAtTheStopIdAndTheLearnedTable) {
  auto model = make_model(PositionKind::learned, false);
  model->eval();
  SamplingOptions so;
  so.max_tokens = 100;
  so.temperature = 0;
  const std::vector<int32_t> prompt = {1, 2, 3};
  const std::vector<int32_t> all = generate(*model, prompt, so);
  EXPECT_EQ(all.size(), 40u - 3u + 1u);  // fills the 40 positions, the last draw needs no position
  so.stop_id = all[5];
  const std::vector<int32_t> cut = generate(*model, prompt, so);
  ASSERT_LE(cut.size(), 6u);
  EXPECT_EQ(cut.back(), all[5]);
  EXPECT_THROW(generate(*model, std::vector<int32_t>{}, so), Error);
}

}  // namespace
