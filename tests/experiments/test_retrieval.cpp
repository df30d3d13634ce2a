// The retrieval task's pieces: recall@k and median rank with ties (open_clip's conventions), hard-negative
// and modality-share counting, the InfoNCE loss against float64 finite differences and a plain loop, the
// caption vocabulary, and a tiny two-tower model that learns a 4-scene toy set to recall@1 = 1 both ways
// (also with NegCLIP's hard negatives, whose loss is checked against a loop and finite differences too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/nn/context.h"
#include "core/ops/ops.h"
#include "core/optim/optimizer.h"
#include "core/util/rng.h"
#include "core/helpers_grad.h"
#include "experiments/lib/tasks/retrieval_metrics.h"
#include "experiments/lib/tasks/retrieval_model.h"
#include "experiments/lib/tasks/retrieval_text.h"
#include "vision/data/scene_dataset.h"

using namespace moelab;
using namespace moelab::experiments;

namespace {

// `per_class` 28x28 items per class, each with its own pixel pattern.
vision::ImageSet synthetic_items(int per_class, int salt) {
  vision::ImageSet set;
  set.count = static_cast<int64_t>(per_class) * vision::kSceneClasses;
  set.channels = 1;
  set.height = set.width = 28;
  set.num_classes = vision::kSceneClasses;
  set.pixels.resize(static_cast<size_t>(set.count * 28 * 28));
  for (int64_t i = 0; i < set.count; ++i) {
    set.labels.push_back(static_cast<int32_t>(i % vision::kSceneClasses));
    for (int p = 0; p < 28 * 28; ++p)
      set.pixels[static_cast<size_t>(i * 784 + p)] = static_cast<uint8_t>(40 + (p * 7 + i * 13 + salt * 31) % 215);
  }
  return set;
}

vision::SceneDataset synthetic_scenes(int64_t train, uint64_t seed, int canvas = 64) {
  vision::SceneDataOptions o;
  o.seed = seed;
  o.canvas = canvas;
  o.train_size = train;
  o.test_size = 100;
  o.heldout_size = 100;
  return vision::SceneDataset(o, synthetic_items(10, 1), synthetic_items(4, 2));
}

// A 4 x 4 similarity matrix with ties; ranks worked by hand in the comments (image i matches text i).
const std::vector<double> kTied = {
    0.9, 0.9, 0.1, 0.2,  // row 0: ties with text 1 (higher index): rank 0
    0.5, 0.5, 0.5, 0.0,  // row 1: tied with text 0 (lower index) and 2 (higher): rank 1
    0.3, 0.8, 0.3, 0.3,  // row 2: text 1 higher, text 0 tied lower: rank 2
    0.7, 0.6, 0.9, 0.1,  // row 3: all higher: rank 3
};

TEST(RetrievalMetrics, RanksWithTiesByHand) {
  EXPECT_EQ(rank_of_truth({0.9, 0.9, 0.1, 0.2}, 0), 0);
  EXPECT_EQ(rank_of_truth({0.5, 0.5, 0.5, 0.0}, 1), 1);
  EXPECT_EQ(rank_of_truth({0.3, 0.8, 0.3, 0.3}, 2), 2);
  EXPECT_EQ(rank_of_truth({0.7, 0.6, 0.9, 0.1}, 3), 3);
  EXPECT_EQ(rank_of_truth({1, 1, 1, 1, 1}, 4), 4);  // all tied: the position in a stable sort
  EXPECT_THROW(rank_of_truth({1, 2}, 2), Error);
}

TEST(RetrievalMetrics, RecallAndMedianRankBothWays) {
  const RetrievalRecall r = retrieval_recall(kTied, 4);
  // image -> text ranks {0, 1, 2, 3}: median 1.5 -> floor + 1 = 2, mean 1.5 + 1
  EXPECT_DOUBLE_EQ(r.image_to_text.r1, 0.25);
  EXPECT_DOUBLE_EQ(r.image_to_text.r5, 1.0);
  EXPECT_DOUBLE_EQ(r.image_to_text.r10, 1.0);
  EXPECT_DOUBLE_EQ(r.image_to_text.median_rank, 2.0);
  EXPECT_DOUBLE_EQ(r.image_to_text.mean_rank, 2.5);
  // text -> image (columns): col 0 {.9 .5 .3 .7} rank 0; col 1 {.9 .5 .8 .6} rank 3; col 2 {.1 .5 .3 .9}
  // rank 2; col 3 {.2 0 .3 .1} rank 2 -> sorted {0, 2, 2, 3}, median 2 -> 3
  EXPECT_DOUBLE_EQ(r.text_to_image.r1, 0.25);
  EXPECT_DOUBLE_EQ(r.text_to_image.r5, 1.0);
  EXPECT_DOUBLE_EQ(r.text_to_image.median_rank, 3.0);
  EXPECT_DOUBLE_EQ(r.text_to_image.mean_rank, 1.75 + 1);
  // recall at 5 and 10 below 1, odd count: ranks {0, 4, 5, 9, 10}
  const DirectionRecall d = recall_from_ranks({9, 0, 10, 5, 4});
  EXPECT_DOUBLE_EQ(d.r1, 0.2);
  EXPECT_DOUBLE_EQ(d.r5, 0.4);
  EXPECT_DOUBLE_EQ(d.r10, 0.8);
  EXPECT_DOUBLE_EQ(d.median_rank, 6.0);
  EXPECT_THROW(retrieval_recall(kTied, 3), Error);
}

TEST(RetrievalMetrics, RanksAgreeWithAStableDescendingSort) {
  RngStream rng(3, "ties");
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng.below(20));
    std::vector<double> s(static_cast<size_t>(n));
    for (double& x : s) x = 0.5 * static_cast<double>(rng.below(3));  // many ties
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[size_t(a)] > s[size_t(b)]; });
    for (int64_t t = 0; t < n; ++t)
      EXPECT_EQ(rank_of_truth(s, t), std::find(order.begin(), order.end(), t) - order.begin());
  }
}

TEST(RetrievalMetrics, PairAccuracyAndModalityShare) {
  EXPECT_DOUBLE_EQ(pair_accuracy({0.9, 0.5, 0.3, 0.2}, {0.1, 0.5, 0.4, 0.1}), 0.5);  // the tie is a miss
  EXPECT_TRUE(std::isnan(pair_accuracy({}, {})));
  // 4 experts: e0 95% image, e1 50/50, e2 unused, e3 all text -> 2 of the 3 used experts
  const std::vector<double> counts = {95, 10, 0, 0,  //
                                      5, 10, 0, 40};
  EXPECT_DOUBLE_EQ(modality_specific_share(counts, 2, 4, 0.9), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(modality_specific_share(counts, 2, 4, 0.96), 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(modality_specific_share({0, 0, 0, 0}, 2, 2, 0.9)));
}

// The loss from a plain loop in double: (CE over rows + CE over columns) / 2 of s * a b^T.
double info_nce_by_loop(const std::vector<double>& a, const std::vector<double>& b, int64_t n, int64_t d, double s) {
  std::vector<double> l(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double x = 0;
      for (int64_t k = 0; k < d; ++k) x += a[size_t(i * d + k)] * b[size_t(j * d + k)];
      l[size_t(i * n + j)] = s * x;
    }
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    double zr = 0, zc = 0;
    for (int64_t j = 0; j < n; ++j) {
      zr += std::exp(l[size_t(i * n + j)]);
      zc += std::exp(l[size_t(j * n + i)]);
    }
    loss += (std::log(zr) - l[size_t(i * n + i)]) + (std::log(zc) - l[size_t(i * n + i)]);
  }
  return loss / (2.0 * double(n));
}

class InfoNce : public ::testing::TestWithParam<const char*> {};

TEST_P(InfoNce, MatchesALoopAndFiniteDifferences) {
  BackendScope scope(std::string(GetParam()) == "ref" ? BackendKind::ref : BackendKind::cpu);
  RngStream rng(11, "info_nce");
  const int64_t n = 5, d = 3;
  auto normal = [&](int64_t count) {
    std::vector<double> v(static_cast<size_t>(count));
    for (double& x : v) x = rng.normal();
    return v;
  };
  const std::vector<double> a = normal(n * d), b = normal(n * d);
  for (double log_scale : {0.4, std::log(1 / 0.07), 4.9}) {
    const Tensor ta = Tensor::from_vector(a, Shape{n, d}), tb = Tensor::from_vector(b, Shape{n, d});
    const Tensor ls = Tensor::full(Shape{1}, log_scale, DType::f64);
    const double s = std::min(std::exp(log_scale), 100.0);
    EXPECT_NEAR(contrastive_loss(ta, tb, ls).item(), info_nce_by_loop(a, b, n, d, s), 1e-12) << log_scale;
    // float32 agrees with float64 to float precision
    EXPECT_NEAR(contrastive_loss(cast(ta, DType::f32), cast(tb, DType::f32), cast(ls, DType::f32)).item(),
                info_nce_by_loop(a, b, n, d, s), 2e-4 * std::max(1.0, s / 10));
    const std::string err = test::check_gradients(
        [](const std::vector<Tensor>& x) { return contrastive_loss(x[0], x[1], x[2], 100.0); }, {ta, tb, ls}, 1e-6);
    EXPECT_EQ(err, "") << "log scale " << log_scale;
  }
  // at the clamp the scale gets no gradient
  Tensor ls = Tensor::full(Shape{1}, 5.0, DType::f64);
  ls.requires_grad_(true);
  contrastive_loss(Tensor::from_vector(a, Shape{n, d}), Tensor::from_vector(b, Shape{n, d}), ls).backward();
  EXPECT_EQ(ls.grad().item(), 0.0);
  // shape errors name the shapes
  EXPECT_THROW(contrastive_loss(Tensor::zeros({3, 2}), Tensor::zeros({4, 2}), Tensor::zeros({1})), Error);
}

// NegCLIP's loss by a plain double loop: row i's softmax runs over the n captions and the m negatives c,
// column j's over the n images only.
double negclip_by_loop(const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& c,
                       int64_t n, int64_t m, int64_t d, double s) {
  auto dot = [&](const std::vector<double>& x, int64_t i, const std::vector<double>& y, int64_t j) {
    double v = 0;
    for (int64_t k = 0; k < d; ++k) v += x[size_t(i * d + k)] * y[size_t(j * d + k)];
    return s * v;
  };
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    double zr = 0, zc = 0;
    for (int64_t j = 0; j < n; ++j) {
      zr += std::exp(dot(a, i, b, j));
      zc += std::exp(dot(a, j, b, i));
    }
    for (int64_t j = 0; j < m; ++j) zr += std::exp(dot(a, i, c, j));
    loss += (std::log(zr) - dot(a, i, b, i)) + (std::log(zc) - dot(a, i, b, i));
  }
  return loss / (2.0 * double(n));
}

TEST_P(InfoNce, WithNegativesMatchesALoopAndFiniteDifferences) {
  BackendScope scope(std::string(GetParam()) == "ref" ? BackendKind::ref : BackendKind::cpu);
  RngStream rng(12, "negclip");
  const int64_t n = 4, m = 6, d = 3;
  auto normal = [&](int64_t count) {
    std::vector<double> v(static_cast<size_t>(count));
    for (double& x : v) x = rng.normal();
    return v;
  };
  const std::vector<double> a = normal(n * d), b = normal(n * d), c = normal(m * d);
  const Tensor ta = Tensor::from_vector(a, Shape{n, d}), tb = Tensor::from_vector(b, Shape{n, d}),
               tc = Tensor::from_vector(c, Shape{m, d});
  for (double log_scale : {0.4, std::log(1 / 0.07), 4.9}) {
    const Tensor ls = Tensor::full(Shape{1}, log_scale, DType::f64);
    const double s = std::min(std::exp(log_scale), 100.0);
    const double want = negclip_by_loop(a, b, c, n, m, d, s);
    EXPECT_NEAR(contrastive_loss_with_negatives(ta, tb, tc, ls).item(), want, 1e-12) << log_scale;
    // negatives only add candidates: the loss exceeds plain InfoNCE's
    EXPECT_GT(want, contrastive_loss(ta, tb, ls).item());
    EXPECT_NEAR(contrastive_loss_with_negatives(cast(ta, DType::f32), cast(tb, DType::f32), cast(tc, DType::f32),
                                                cast(ls, DType::f32))
                    .item(),
                want, 2e-4 * std::max(1.0, s / 10));
    const std::string err = test::check_gradients(
        [](const std::vector<Tensor>& x) { return contrastive_loss_with_negatives(x[0], x[1], x[3], x[2], 100.0); },
        {ta, tb, ls, tc}, 1e-6);
    EXPECT_EQ(err, "") << "log scale " << log_scale;
  }
  // a single negative, N = 1: the text->image term is 0 and the loss is log(1 + e^(s(a.c - a.b)))
  {
    const Tensor ls = Tensor::full(Shape{1}, 0.0, DType::f64);
    const double ab = a[0] * b[0] + a[1] * b[1] + a[2] * b[2], ac = a[0] * c[0] + a[1] * c[1] + a[2] * c[2];
    EXPECT_NEAR(contrastive_loss_with_negatives(slice(ta, 0, 0, 1), slice(tb, 0, 0, 1), slice(tc, 0, 0, 1), ls).item(),
                0.5 * std::log1p(std::exp(ac - ab)), 1e-12);
  }
  EXPECT_THROW(contrastive_loss_with_negatives(ta, tb, Tensor::zeros({2, d + 1}, DType::f64), Tensor::zeros({1}, DType::f64)),
               Error);
  EXPECT_THROW(contrastive_loss_with_negatives(ta, tb, Tensor::zeros({0, d}, DType::f64), Tensor::zeros({1}, DType::f64)),
               Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, InfoNce, ::testing::Values("ref", "cpu"));

TEST(CaptionVocabulary, CoversTheGrammarAndPrompts) {
  const CaptionVocabulary vocab;
  const vision::SceneDataset data = synthetic_scenes(300, 7);
  // every caption variant and hard negative of 300 scenes is in the vocabulary
  for (int64_t i = 0; i < data.size(vision::SceneSplit::train); ++i)
    for (int64_t variant = 0; variant < 4; ++variant) {
      const std::string c = data.caption(vision::SceneSplit::train, i, variant).text;
      EXPECT_TRUE(vocab.unknown_words(c).empty()) << c;
    }
  for (int64_t i = 0; i < data.size(vision::SceneSplit::test); ++i)
    for (int k = 0; k < vision::kNegativeKinds; ++k)
      if (auto p = data.hard_negative(vision::SceneSplit::test, i, static_cast<vision::NegativeKind>(k))) {
        EXPECT_TRUE(vocab.unknown_words(p->negative.text).empty()) << p->negative.text;
      }
  for (int c = 0; c < vision::kSceneClasses; ++c)
    for (const std::string& p : vision::class_prompts(c)) EXPECT_TRUE(vocab.unknown_words(p).empty()) << p;
  const std::vector<int64_t> ids = vocab.encode("Two items: a red Bag, and a small ankle boot on the left");
  std::string back;
  for (int64_t id : ids) back += (back.empty() ? "" : " ") + vocab.word(id);
  EXPECT_EQ(back, "two items : a red bag , and a small ankle boot on the left");
  EXPECT_EQ(vocab.encode("a zebra")[1], CaptionVocabulary::kUnknown);
  const TokenBatch tb = encode_captions(vocab, {"a bag", "two red bags on the left"}, 10);
  EXPECT_EQ(tb.tokens.shape(), Shape({2, 6}));
  EXPECT_EQ(tb.padding_mask.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
  EXPECT_THROW(encode_captions(vocab, {"a b c d e"}, 3), Error);
}

// Four training scenes with distinct captions, fitted by a tiny two-tower model (MoE in both towers, and the
// bag-of-words tower; and with NegCLIP's hard negatives): after training, each image's nearest caption is
// its own and vice versa, and with negatives each image scores its caption above each of its negatives.
enum class ToyMode { transformer_moe, bag_of_words, transformer_moe_negclip };
class TinyTwoTower : public ::testing::TestWithParam<ToyMode> {};

TEST_P(TinyTwoTower, LearnsFourScenesToRecallOne) {
  const bool bag_of_words = GetParam() == ToyMode::bag_of_words;
  const bool negclip = GetParam() == ToyMode::transformer_moe_negclip;
  const vision::SceneDataset data = synthetic_scenes(200, 5, 32);
  std::vector<int64_t> picked;
  std::vector<std::string> seen;
  for (int64_t i = 0; i < data.size(vision::SceneSplit::train) && picked.size() < 4; ++i) {
    const std::string c = data.caption(vision::SceneSplit::train, i, 0).text;
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
    seen.push_back(c);
    picked.push_back(i);
  }
  ASSERT_EQ(picked.size(), 4u);
  const vision::SceneBatch sb = data.batch(vision::SceneSplit::train, picked, 0);
  const CaptionVocabulary vocab;
  const TokenBatch tb = encode_captions(vocab, sb.captions, 40);
  std::vector<std::string> negatives;
  std::vector<int64_t> negative_of;  // the scene row of each negative
  for (int64_t i = 0; i < 4 && negclip; ++i)
    for (const vision::Caption& c : data.training_negatives(picked[size_t(i)], 0, sb.caption_info[size_t(i)], 4)) {
      negatives.push_back(c.text);
      negative_of.push_back(i);
    }
  if (negclip) {
    ASSERT_GE(negatives.size(), 4u);
  }
  const TokenBatch nb = encode_captions(vocab, negclip ? negatives : sb.captions, 40);

  vision::ViTOptions v;
  v.image_size = 32;
  v.channels = 3;
  v.num_classes = 16;  // the joint dimension
  v.patch_size = 8;
  v.dim = 32;
  v.depth = 2;
  v.num_heads = 2;
  v.class_token = false;
  v.moe_layers = {1};
  moe::MoEConfig mc;
  mc.num_experts = 4;
  mc.top_k = 1;
  TextTowerOptions t;
  t.vocab_size = vocab.size();
  t.max_len = 40;
  t.dim = 32;
  t.depth = 2;
  t.num_heads = 2;
  t.out_dim = 16;
  t.moe_layers = {1};
  t.moe = mc;
  RngStream init(1, "init");
  TwoTowerModel model(v, mc, t, bag_of_words, 1 / 0.07, init);
  optim::AdamW opt(model.named_parameters(), {.lr = 3e-3});
  auto recall = [&] {
    NoGradGuard ng;
    nn::Batch b;
    nn::ForwardContext ctx(b);
    const Tensor img = model.encode_images(sb.images, {}, ctx);
    const Tensor txt = model.encode_texts(tb.tokens, tb.padding_mask, {}, ctx);
    const std::vector<double> sim = cast(matmul(img, transpose(txt, 0, 1)), DType::f64).to_vector<double>();
    return retrieval_recall(sim, 4);
  };
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 150; ++step) {
    nn::Batch b;
    nn::ForwardContext ctx(b);
    Tensor img = model.encode_images(sb.images, {}, ctx), txt = model.encode_texts(tb.tokens, tb.padding_mask, {}, ctx);
    Tensor loss = negclip ? contrastive_loss_with_negatives(
                                img, txt, model.encode_texts(nb.tokens, nb.padding_mask, {}, ctx), model.logit_scale)
                          : contrastive_loss(img, txt, model.logit_scale);
    if (Tensor aux = ctx.total_aux_loss(); aux.defined()) loss = loss + aux;
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const RetrievalRecall r = recall();
  EXPECT_LT(last_loss, 0.25 * first_loss);
  EXPECT_EQ(r.image_to_text.r1, 1.0) << "loss " << first_loss << " -> " << last_loss;
  EXPECT_EQ(r.text_to_image.r1, 1.0);
  EXPECT_EQ(r.image_to_text.median_rank, 1.0);
  if (negclip) {
    NoGradGuard ng;
    nn::Batch b;
    nn::ForwardContext ctx(b);
    const Tensor img = model.encode_images(sb.images, {}, ctx);
    const std::vector<double> pos = sum(mul(img, model.encode_texts(tb.tokens, tb.padding_mask, {}, ctx)), {1})
                                        .to_vector<double>();
    const Tensor neg_emb = model.encode_texts(nb.tokens, nb.padding_mask, {}, ctx);
    for (size_t k = 0; k < negatives.size(); ++k) {
      const int64_t row = negative_of[k];
      const double score = sum(mul(slice(img, 0, row, row + 1), slice(neg_emb, 0, int64_t(k), int64_t(k) + 1))).item();
      EXPECT_GT(pos[size_t(row)], score) << sb.captions[size_t(row)] << " vs negative " << negatives[k];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TextTowers, TinyTwoTower,
                         ::testing::Values(ToyMode::transformer_moe, ToyMode::bag_of_words,
                                           ToyMode::transformer_moe_negclip),
                         [](const auto& info) {
                           switch (info.param) {
                             case ToyMode::bag_of_words: return "bag_of_words";
                             case ToyMode::transformer_moe_negclip: return "transformer_moe_negclip";
                             default: return "transformer_moe";
                           }
                         });

}  // namespace
