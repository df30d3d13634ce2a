// Task `retrieval`: config keys, data stream, models, the InfoNCE training step and the evaluation
// (recall both ways on test and held-out scenes, hard negatives, zero-shot Fashion-MNIST, routing by modality).
#include "experiments/lib/tasks/retrieval.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/tasks/retrieval_metrics.h"
#include "experiments/lib/tasks/retrieval_report.h"
#include "vision/data/fashion_mnist.h"
#include "vision/data/scene_preview.h"

namespace moelab::experiments {

using vision::NegativeKind;
using vision::SceneSplit;

void RetrievalTask::declare_config(Schema& s) const {
  s.add_section("data", "the caption scenes (docs/scenes.md) and batching");
  s.add_string("data.dir", "", "folder with the Fashion-MNIST IDX files (\"\": $MOELAB_FASHION_MNIST_DIR or the package's)");
  s.add_int("data.seed", 0, "seed of the scenes, captions and held-out pairs (independent of `seed`)").at_least(0);
  s.add_int("data.canvas", 64, "scene side in pixels").range(24, 256);
  s.add_int("data.train_size", 20000, "training scenes").at_least(1);
  s.add_int("data.test_size", 1000, "in-distribution test scenes").at_least(1);
  s.add_int("data.heldout_size", 1000, "held-out scenes (each shows a held-out colour-class pair)").at_least(1);
  s.add_int("data.heldout_per_colour", 1, "classes held out per colour").range(0, 9);
  s.add_int("data.batch_size", 128, "scene-caption pairs per micro-batch (the InfoNCE negatives)").at_least(2);
  s.add_int("data.eval_batch_size", 250, "scenes or captions per evaluation batch").at_least(1);
  s.add_int("data.max_caption_len", 40, "the longest caption in words (text position tables)").range(8, 256);
  s.add_int("data.hard_negatives_per_caption", 0,
            "NegCLIP: hard negatives (colour/position swap, object replaced, count changed) of each training "
            "caption added as image->text candidates of the loss (0 = plain InfoNCE)").range(0, 4);

  s.add_section("model", "the contrastive model");
  s.add_choice("model.arch", "two_tower", {"two_tower", "one_tower"},
               "two towers (image ViT + text tower) or one shared MoE transformer over both modalities (LIMoE)");
  s.add_int("model.embed_dim", 64, "dimension of the joint embedding space").at_least(1);
  s.add_float("model.init_logit_scale", 1 / 0.07, "initial logit scale (CLIP: 1/0.07)").greater_than(0);
  s.add_float("model.max_logit_scale", 100, "the logit scale is clamped at this value").greater_than(0);
  s.add_float("model.init_std", 0.02, "std of the truncated-normal weight init").greater_than(0);

  s.add_section("image", "the image tower (a ViT, vision/model/vit.h); with model.arch = one_tower, the shared tower");
  s.add_choice("image.patch_embed", "conv_stem", {"conv", "linear", "conv_stem"}, "patch embedding");
  s.add_int("image.patch_size", 8, "patch side in pixels (divides data.canvas)").at_least(1);
  s.add_int_list("image.stem_channels", {16, 32, 64}, "conv_stem: channels of the 3x3 convs (the last log2(patch) of stride 2)");
  s.add_int("image.dim", 64, "token width").at_least(1);
  s.add_int("image.depth", 4, "transformer blocks").range(1, 64);
  s.add_int("image.num_heads", 4, "attention heads").at_least(1);
  s.add_float("image.mlp_ratio", 2.0, "dense FFN width / dim (also each expert's)").greater_than(0);
  s.add_choice("image.pool", "mean", {"cls", "mean"}, "pool a class token or the mean of the patch tokens");
  declare_moe_config(s, 2, "image.moe");
  check_moe_layers_within(s, "image.depth", "image.moe");

  s.add_section("text", "the text tower of model.arch = two_tower");
  s.add_choice("text.tower", "transformer", {"transformer", "bow"},
               "a transformer encoder (MoE by text.moe.*) or a bag-of-words baseline");
  s.add_int("text.dim", 64, "word embedding / token width").at_least(1);
  s.add_int("text.depth", 2, "transformer blocks").range(1, 64);
  s.add_int("text.num_heads", 4, "attention heads").at_least(1);
  s.add_float("text.mlp_ratio", 2.0, "dense FFN width / dim (bow: hidden width / dim)").greater_than(0);
  declare_moe_config(s, 2, "text.moe");
  check_moe_layers_within(s, "text.depth", "text.moe");

  s.add_section("eval", "the final evaluation");
  s.add_int("eval.zeroshot_images", 2000, "Fashion-MNIST test items classified zero-shot").range(10, 10000);
  s.add_int("eval.preview_scenes", 12, "test scenes in the report's preview sheet").range(0, 64);

  s.add_check([](const Config& c, io::ConfigReporter& r) {
    for (const char* p : {"image", "text"}) {
      const std::string P(p);
      const int64_t dim = c.get_int(P + ".dim"), heads = c.get_int(P + ".num_heads");
      if (dim % heads != 0)
        r.error(P + ".num_heads", P + ".dim = " + std::to_string(dim) + " is not a multiple of " + P +
                                      ".num_heads = " + std::to_string(heads));
    }
    const int64_t canvas = c.get_int("data.canvas"), patch = c.get_int("image.patch_size");
    if (canvas % patch != 0)
      r.error("image.patch_size", "image.patch_size = " + std::to_string(patch) + " does not divide data.canvas = " +
                                      std::to_string(canvas));
    if (c.get_string("image.patch_embed") == "conv_stem") {
      int64_t convs = 0;
      while ((int64_t{1} << convs) < patch) ++convs;
      if ((int64_t{1} << convs) != patch)
        r.error("image.patch_size", "image.patch_embed = \"conv_stem\" needs a power-of-two patch size, got " +
                                        std::to_string(patch));
      else if (static_cast<int64_t>(c.get_int_list("image.stem_channels").size()) < convs)
        r.error("image.stem_channels", "conv_stem with patch size " + std::to_string(patch) + " needs at least " +
                                           std::to_string(convs) + " channel counts");
    }
  });
}

void RetrievalTask::build(const Config& cfg, const TaskContext& ctx) {
  seed_ = ctx.seed;
  run_dir_ = ctx.run_dir;
  device_ = ctx.device;
  vision::SceneDataOptions o;
  o.seed = static_cast<uint64_t>(cfg.get_int("data.seed"));
  o.canvas = static_cast<int>(cfg.get_int("data.canvas"));
  o.train_size = cfg.get_int("data.train_size");
  o.test_size = cfg.get_int("data.test_size");
  o.heldout_size = cfg.get_int("data.heldout_size");
  o.heldout_per_colour = static_cast<int>(cfg.get_int("data.heldout_per_colour"));
  std::string dir = cfg.get_string("data.dir");
  if (dir.empty()) dir = vision::default_fashion_mnist_dir();
  data_ = std::make_unique<vision::SceneDataset>(vision::SceneDataset::load(o, dir));
  batch_size_ = cfg.get_int("data.batch_size");
  if (batch_size_ > o.train_size)
    throw ConfigError({cfg.origin("data.batch_size").str() + ": data.batch_size = " + std::to_string(batch_size_) +
                       " exceeds the " + std::to_string(o.train_size) + " training scenes"});
  eval_batch_ = cfg.get_int("data.eval_batch_size");
  max_len_ = cfg.get_int("data.max_caption_len");
  hard_negatives_ = static_cast<int>(cfg.get_int("data.hard_negatives_per_caption"));
  one_tower_ = cfg.get_string("model.arch") == "one_tower";
  bag_of_words_ = cfg.get_string("text.tower") == "bow";
  embed_dim_ = cfg.get_int("model.embed_dim");
  init_logit_scale_ = cfg.get_float("model.init_logit_scale");
  max_logit_scale_ = cfg.get_float("model.max_logit_scale");
  zeroshot_images_ = cfg.get_int("eval.zeroshot_images");
  preview_scenes_ = cfg.get_int("eval.preview_scenes");
  const nn::InitOptions init{nn::InitScheme::trunc_normal, cfg.get_float("model.init_std")};

  vision::ViTOptions& v = image_options_;
  v.image_size = o.canvas;
  v.channels = 3;
  v.num_classes = embed_dim_;  // the ViT's head is the image projection
  v.patch_embed = vision::parse_patch_embed(cfg.get_string("image.patch_embed"));
  v.patch_size = cfg.get_int("image.patch_size");
  v.stem_channels = cfg.get_int_list("image.stem_channels");
  v.dim = cfg.get_int("image.dim");
  v.depth = cfg.get_int("image.depth");
  v.num_heads = cfg.get_int("image.num_heads");
  v.mlp_ratio = cfg.get_float("image.mlp_ratio");
  v.class_token = cfg.get_string("image.pool") == "cls";
  v.init = init;
  v.moe_layers = moe_blocks_from(cfg, v.depth, "image.moe");
  image_moe_ = moe_config_from(cfg, "image.moe");

  TextTowerOptions& t = text_options_;
  t.vocab_size = vocab_.size();
  t.max_len = max_len_;
  t.dim = cfg.get_int("text.dim");
  t.depth = cfg.get_int("text.depth");
  t.num_heads = cfg.get_int("text.num_heads");
  t.mlp_ratio = cfg.get_float("text.mlp_ratio");
  t.out_dim = embed_dim_;
  t.init = init;
  t.moe_layers = moe_blocks_from(cfg, t.depth, "text.moe");
  t.moe = moe_config_from(cfg, "text.moe");
  reshuffle(0);

  if (ctx.log) {
    auto blocks = [](const std::vector<int64_t>& l) {
      std::string s = "[";
      for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + std::to_string(l[i]);
      return s + "]";
    };
    std::string desc = one_tower_ ? "one tower (LIMoE), MoE in blocks " + blocks(v.moe_layers) + ": " + image_moe_.describe()
                                  : "two towers: ViT (MoE in blocks " + blocks(v.moe_layers) + ") and " +
                                        (bag_of_words_ ? std::string("a bag-of-words text tower")
                                                       : "a transformer text tower (MoE in blocks " +
                                                             blocks(t.moe_layers) + ")");
    ctx.log("retrieval: " + std::to_string(o.train_size) + " train / " + std::to_string(o.test_size) + " test / " +
            std::to_string(o.heldout_size) + " held-out scenes of " + std::to_string(o.canvas) + " px, vocabulary of " +
            std::to_string(vocab_.size()) + " words; " + desc);
  }
}

std::shared_ptr<nn::Module> RetrievalTask::make_model() {
  RngStream init(seed_, "init");
  if (one_tower_) {
    OneTowerOptions o;
    o.image = image_options_;
    o.vocab_size = vocab_.size();
    o.max_len = max_len_;
    o.embed_dim = embed_dim_;
    o.moe = image_moe_;
    return std::make_shared<OneTowerModel>(o, init_logit_scale_, init);
  }
  return std::make_shared<TwoTowerModel>(image_options_, image_moe_, text_options_, bag_of_words_, init_logit_scale_,
                                         init);
}

int64_t RetrievalTask::micro_batches_per_epoch() const { return data_->size(SceneSplit::train) / batch_size_; }

void RetrievalTask::reshuffle(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  const int64_t n = data_->size(SceneSplit::train);
  order_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = i;
  RngStream rng(seed_, "retrieval/epoch/" + std::to_string(epoch));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order_[static_cast<size_t>(i)], order_[rng.below(static_cast<uint64_t>(i + 1))]);
}

Tensor RetrievalTask::routing_labels(const vision::SceneBatch& b, Modality modality) const {
  const int64_t n = static_cast<int64_t>(b.scenes.size());
  if (one_tower_) return Tensor::full(Shape{n}, double(modality), DType::i64);
  std::vector<int64_t> cls(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) cls[static_cast<size_t>(i)] = b.scenes[static_cast<size_t>(i)].objects.at(0).cls;
  return Tensor::from_vector(cls, Shape{n});
}

nn::Batch RetrievalTask::next_batch(int64_t, int) {
  if (position_ + batch_size_ > static_cast<int64_t>(order_.size())) reshuffle(epoch_ + 1);
  std::vector<int64_t> idx(order_.begin() + position_, order_.begin() + position_ + batch_size_);
  position_ += batch_size_;
  // the epoch picks the caption variant: each pass sees other templates and word orders
  const vision::SceneBatch sb = data_->batch(SceneSplit::train, idx, epoch_);
  std::vector<std::string> captions = sb.captions;
  std::vector<int64_t> text_rows;  // the scene row of each caption (negatives follow the B true captions)
  for (int64_t i = 0; i < batch_size_; ++i) text_rows.push_back(i);
  for (int64_t i = 0; i < batch_size_ && hard_negatives_ > 0; ++i)
    for (const vision::Caption& neg : data_->training_negatives(idx[static_cast<size_t>(i)], epoch_,
                                                                sb.caption_info[static_cast<size_t>(i)], hard_negatives_)) {
      captions.push_back(neg.text);
      text_rows.push_back(i);
    }
  const TokenBatch tb = encode_captions(vocab_, captions, max_len_);
  nn::Batch b;
  b.images = sb.images;
  b.tokens = tb.tokens;  // (B + M, T): the B true captions, then the M hard negatives
  b.padding_mask = tb.padding_mask;
  b.labels = routing_labels(sb, kImageModality);
  // the text tower's routing labels, one per caption (that of its scene)
  const std::vector<int64_t> scene_labels = routing_labels(sb, kTextModality).to_vector<int64_t>();
  std::vector<int64_t> text_labels;
  for (int64_t r : text_rows) text_labels.push_back(scene_labels[static_cast<size_t>(r)]);
  b.features = Tensor::from_vector(text_labels, Shape{static_cast<int64_t>(text_labels.size())});
  if (text_rows.size() > static_cast<size_t>(batch_size_))  // (M): the scene row of each negative
    b.targets = Tensor::from_vector(std::vector<int64_t>(text_rows.begin() + batch_size_, text_rows.end()),
                                    Shape{static_cast<int64_t>(text_rows.size()) - batch_size_});
  return b;
}

StepResult RetrievalTask::train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) {
  auto& m = dynamic_cast<ContrastiveModel&>(model);
  const int64_t n = b.images.size(0);
  Tensor img = m.encode_images(b.images, b.labels, ctx);
  Tensor all_txt = m.encode_texts(b.tokens, b.padding_mask, b.features, ctx);  // (B + M, E)
  // NegCLIP: captions past the first B are hard negatives, candidates of the image->text direction only
  const int64_t negatives = all_txt.size(0) - n;
  Tensor txt = negatives > 0 ? slice(all_txt, 0, 0, n) : all_txt;
  Tensor loss = negatives > 0 ? contrastive_loss_with_negatives(img, txt, slice(all_txt, 0, n, n + negatives),
                                                                m.logit_scale, max_logit_scale_)
                              : contrastive_loss(img, txt, m.logit_scale, max_logit_scale_);
  StepResult r;
  r.loss = loss;
  r.examples = b.size();
  {
    NoGradGuard ng;
    // in-batch image->text accuracy: the true caption scores highest among the batch's captions
    Tensor sim = matmul(img.detach(), transpose(txt.detach(), 0, 1));
    std::vector<int64_t> best = argmax(sim, 1).to_vector<int64_t>();
    double right = 0;
    for (size_t i = 0; i < best.size(); ++i) right += best[i] == static_cast<int64_t>(i);
    r.metrics["i2t_accuracy"] = right / static_cast<double>(best.size());
    if (negatives > 0) {
      r.metrics["hard_negatives"] = static_cast<double>(negatives) / static_cast<double>(n);
      // the share of hard negatives that score below their own image's true caption
      const std::vector<double> neg_sim =
          cast(matmul(img.detach(), transpose(slice(all_txt.detach(), 0, n, n + negatives), 0, 1)), DType::f64)
              .to(Device::cpu()).to_vector<double>();
      const std::vector<double> pos_sim = cast(sum(mul(img.detach(), txt.detach()), {1}), DType::f64)
                                              .to(Device::cpu()).to_vector<double>();
      const std::vector<int64_t> rows = b.targets.to(Device::cpu()).to_vector<int64_t>();
      double below = 0;
      for (int64_t k = 0; k < negatives; ++k) {
        const int64_t row = rows[static_cast<size_t>(k)];
        below += neg_sim[static_cast<size_t>(row * negatives + k)] < pos_sim[static_cast<size_t>(row)];
      }
      r.metrics["hardneg_accuracy"] = below / static_cast<double>(negatives);
    }
    r.metrics["logit_scale"] = std::min(std::exp(m.logit_scale.item()), max_logit_scale_);
  }
  return r;
}

std::vector<double> RetrievalTask::embed_images(ContrastiveModel& model, const Tensor& images, const Tensor& labels,
                                                nn::ForwardContext& ctx) const {
  return cast(model.encode_images(images.to(device_), labels, ctx), DType::f64).to(Device::cpu()).to_vector<double>();
}

std::vector<double> RetrievalTask::embed_captions(ContrastiveModel& model, const std::vector<std::string>& captions) const {
  std::vector<double> out;
  for (size_t start = 0; start < captions.size(); start += static_cast<size_t>(eval_batch_)) {
    const size_t end = std::min(captions.size(), start + static_cast<size_t>(eval_batch_));
    const TokenBatch tb = encode_captions(vocab_, {captions.begin() + start, captions.begin() + end}, max_len_);
    nn::Batch b;
    nn::ForwardContext ctx(b);
    const int64_t n = static_cast<int64_t>(end - start);
    Tensor labels = one_tower_ ? Tensor::full(Shape{n}, double(kTextModality), DType::i64) : Tensor();
    Tensor e = model.encode_texts(tb.tokens.to(device_), tb.padding_mask.to(device_), labels, ctx);
    std::vector<double> v = cast(e, DType::f64).to(Device::cpu()).to_vector<double>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::vector<double> RetrievalTask::embed_scenes(ContrastiveModel& model, SceneSplit split,
                                                const std::vector<int64_t>& indices) const {
  std::vector<double> out;
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(eval_batch_)) {
    const size_t end = std::min(indices.size(), start + static_cast<size_t>(eval_batch_));
    const vision::SceneBatch sb = data_->batch(split, {indices.begin() + start, indices.begin() + end}, 0);
    nn::Batch b;
    nn::ForwardContext ctx(b);
    std::vector<double> v = embed_images(model, sb.images, routing_labels(sb, kImageModality), ctx);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

namespace {
// a (n x e) times b (m x e)^T -> (n x m), row-major doubles
std::vector<double> similarities(const std::vector<double>& a, const std::vector<double>& b, int64_t e) {
  const int64_t n = static_cast<int64_t>(a.size()) / e, m = static_cast<int64_t>(b.size()) / e;
  std::vector<double> s(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double d = 0;
      for (int64_t k = 0; k < e; ++k) d += a[static_cast<size_t>(i * e + k)] * b[static_cast<size_t>(j * e + k)];
      s[static_cast<size_t>(i * m + j)] = d;
    }
  return s;
}

void put_recall(std::map<std::string, double>& m, const std::string& set, const RetrievalRecall& r) {
  for (const auto& [dir, d] : {std::pair{std::string("i2t"), r.image_to_text}, std::pair{std::string("t2i"), r.text_to_image}}) {
    m[set + "/" + dir + "_r1"] = d.r1;
    m[set + "/" + dir + "_r5"] = d.r5;
    m[set + "/" + dir + "_r10"] = d.r10;
    m[set + "/" + dir + "_median_rank"] = d.median_rank;
  }
}
}  // namespace

EvalResult RetrievalTask::evaluate(EvalContext& ec) {
  auto& model = dynamic_cast<ContrastiveModel&>(ec.model);
  EvalResult r;
  auto& m = r.metrics;
  const int64_t e = embed_dim_;

  // Test scenes against their caption variant 0: the routing log holds this pass only (the report's heatmaps).
  ec.routing.clear();
  auto recall_of = [&](SceneSplit split, bool record) {
    const int64_t n = data_->size(split);
    std::vector<double> img, txt;
    for (int64_t start = 0; start < n; start += eval_batch_) {
      std::vector<int64_t> idx;
      for (int64_t i = start; i < std::min(n, start + eval_batch_); ++i) idx.push_back(i);
      const vision::SceneBatch sb = data_->batch(split, idx, 0);
      const TokenBatch tb = encode_captions(vocab_, sb.captions, max_len_);
      nn::Batch b;
      b.images = sb.images;
      auto embed = [&](nn::ForwardContext& ctx) {
        std::vector<double> vi = embed_images(model, sb.images, routing_labels(sb, kImageModality), ctx);
        Tensor tl = routing_labels(sb, kTextModality);
        std::vector<double> vt =
            cast(model.encode_texts(tb.tokens.to(device_), tb.padding_mask.to(device_), tl, ctx), DType::f64)
                .to(Device::cpu())
                .to_vector<double>();
        img.insert(img.end(), vi.begin(), vi.end());
        txt.insert(txt.end(), vt.begin(), vt.end());
        return 0;
      };
      if (record) {
        ec.run(b, embed);
      } else {
        nn::ForwardContext ctx(b);
        embed(ctx);
      }
    }
    return std::tuple{retrieval_recall(similarities(img, txt, e), n), img, txt};
  };
  auto [test_recall, test_img, test_txt] = recall_of(SceneSplit::test, true);
  put_recall(m, "test", test_recall);
  m["chance/r1"] = 1.0 / double(data_->size(SceneSplit::test));
  m["logit_scale"] = std::min(std::exp(model.logit_scale.item()), max_logit_scale_);
  if (!ec.final) return r;

  RetrievalReportData rep;
  rep.one_tower = one_tower_;
  rep.text_tower = one_tower_ ? "shared (LIMoE)" : bag_of_words_ ? "bag of words" : "transformer";
  // modality x expert counts of the test pass (one tower: labels are the modalities)
  if (one_tower_)
    for (const auto& [path, tally] : ec.routing.layers()) {
      if (tally.num_experts <= 0) continue;
      ModalityRouting mr;
      mr.path = path;
      mr.experts = tally.num_experts;
      mr.counts = tally.label_matrix(2);
      mr.share = modality_specific_share(mr.counts, 2, mr.experts, 0.9);
      m["routing/" + path + "/modality_specific_share"] = mr.share;
      rep.routing.push_back(mr);
    }
  if (!rep.routing.empty()) {
    double s = 0;
    for (const auto& mr : rep.routing) s += mr.share;
    m["limoe/modality_specific_share"] = s / double(rep.routing.size());
  }

  auto heldout = recall_of(SceneSplit::heldout, false);
  put_recall(m, "heldout", std::get<0>(heldout));
  m["chance/heldout_r1"] = 1.0 / double(data_->size(SceneSplit::heldout));

  // Hard negatives: the true caption against its edited negative, scored with the same image.
  for (SceneSplit split : {SceneSplit::test, SceneSplit::heldout}) {
    const std::vector<double>& img = split == SceneSplit::test ? test_img : std::get<1>(heldout);
    for (int k = 0; k < vision::kNegativeKinds; ++k) {
      const auto kind = static_cast<NegativeKind>(k);
      std::vector<int64_t> scenes;
      std::vector<std::string> pos, neg;
      for (int64_t i = 0; i < data_->size(split); ++i)
        if (auto p = data_->hard_negative(split, i, kind)) {
          scenes.push_back(i);
          pos.push_back(p->positive.text);
          neg.push_back(p->negative.text);
        }
      if (scenes.empty()) continue;
      const std::vector<double> ep = embed_captions(model, pos), en = embed_captions(model, neg);
      std::vector<double> sp(scenes.size()), sn(scenes.size());
      for (size_t j = 0; j < scenes.size(); ++j)
        for (int64_t d = 0; d < e; ++d) {
          const double x = img[static_cast<size_t>(scenes[j] * e + d)];
          sp[j] += x * ep[j * static_cast<size_t>(e) + static_cast<size_t>(d)];
          sn[j] += x * en[j * static_cast<size_t>(e) + static_cast<size_t>(d)];
        }
      const std::string prefix = split == SceneSplit::test ? "hardneg/" : "heldout_hardneg/";
      m[prefix + vision::negative_kind_name(kind) + "_accuracy"] = pair_accuracy(sp, sn);
      m[prefix + vision::negative_kind_name(kind) + "_pairs"] = double(scenes.size());
    }
  }

  // Zero-shot Fashion-MNIST: centred untinted items against the class prompts, averaged over templates.
  {
    const vision::ImageSet& items = data_->items(SceneSplit::test);
    const int64_t n = std::min<int64_t>(zeroshot_images_, items.count);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
    std::vector<double> img;
    std::vector<int64_t> labels;
    for (int64_t start = 0; start < n; start += eval_batch_) {
      std::vector<int64_t> part(idx.begin() + start, idx.begin() + std::min(n, start + eval_batch_));
      const vision::ProbeBatch pb = vision::probe_batch(items, part, data_->options().canvas);
      nn::Batch b;
      nn::ForwardContext ctx(b);
      const int64_t bn = static_cast<int64_t>(part.size());
      Tensor rl = one_tower_ ? Tensor::full(Shape{bn}, double(kImageModality), DType::i64) : pb.labels;
      std::vector<double> v = embed_images(model, pb.images, rl, ctx);
      img.insert(img.end(), v.begin(), v.end());
      std::vector<int64_t> l = pb.labels.to_vector<int64_t>();
      labels.insert(labels.end(), l.begin(), l.end());
    }
    const int64_t templates = static_cast<int64_t>(vision::prompt_templates().size());
    std::vector<std::string> prompts;
    for (int c = 0; c < vision::kSceneClasses; ++c)
      for (const std::string& p : vision::class_prompts(c)) prompts.push_back(p);
    const std::vector<double> pe = embed_captions(model, prompts);  // (classes * templates, e)
    // class embedding of prompt set `which` (-1: the normalized mean over all templates)
    auto class_table = [&](int64_t which) {
      std::vector<double> t(static_cast<size_t>(vision::kSceneClasses * e), 0.0);
      for (int c = 0; c < vision::kSceneClasses; ++c) {
        for (int64_t p = 0; p < templates; ++p) {
          if (which >= 0 && p != which) continue;
          for (int64_t d = 0; d < e; ++d)
            t[static_cast<size_t>(c * e + d)] += pe[static_cast<size_t>((c * templates + p) * e + d)];
        }
        double norm = 0;
        for (int64_t d = 0; d < e; ++d) norm += t[static_cast<size_t>(c * e + d)] * t[static_cast<size_t>(c * e + d)];
        norm = std::sqrt(norm) + 1e-12;
        for (int64_t d = 0; d < e; ++d) t[static_cast<size_t>(c * e + d)] /= norm;
      }
      return t;
    };
    auto accuracy = [&](const std::vector<double>& table) {
      const std::vector<double> s = similarities(img, table, e);
      double right = 0;
      for (int64_t i = 0; i < n; ++i) {
        const auto row = s.begin() + i * vision::kSceneClasses;
        right += (std::max_element(row, row + vision::kSceneClasses) - row) == labels[static_cast<size_t>(i)];
      }
      return right / double(n);
    };
    m["zeroshot/fmnist_accuracy"] = accuracy(class_table(-1));
    for (int64_t p = 0; p < templates; ++p) {
      const double a = accuracy(class_table(p));
      m["zeroshot/template_" + std::to_string(p) + "_accuracy"] = a;
      rep.zeroshot_templates.push_back({vision::prompt_templates()[static_cast<size_t>(p)], a});
    }
    m["zeroshot/images"] = double(n);
    m["chance/zeroshot"] = 1.0 / vision::kSceneClasses;
  }

  if (!run_dir_.empty()) {
    rep.metrics = m;
    std::vector<int64_t> picks;
    for (int64_t i = 0; i < std::min(preview_scenes_, data_->size(SceneSplit::test)); ++i) picks.push_back(i);
    if (!picks.empty()) rep.preview = vision::preview_sheet(vision::scene_tiles(*data_, SceneSplit::test, picks, true),
                                                            data_->options().canvas, 4, 3);
    // top-5 captions for the first test scenes: what the model retrieves, right or wrong
    for (int64_t i = 0; i < std::min<int64_t>(6, data_->size(SceneSplit::test)); ++i) {
      std::vector<double> row(static_cast<size_t>(data_->size(SceneSplit::test)));
      for (size_t j = 0; j < row.size(); ++j) {
        double d = 0;
        for (int64_t k = 0; k < e; ++k) d += test_img[static_cast<size_t>(i * e + k)] * test_txt[j * size_t(e) + size_t(k)];
        row[j] = d;
      }
      std::vector<int64_t> order(row.size());
      for (size_t j = 0; j < order.size(); ++j) order[j] = static_cast<int64_t>(j);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[size_t(a)] > row[size_t(b)]; });
      RetrievalExample ex;
      ex.scene = i;
      ex.truth = data_->caption(SceneSplit::test, i, 0).text;
      for (size_t j = 0; j < 5 && j < order.size(); ++j)
        ex.top.push_back({data_->caption(SceneSplit::test, order[j], 0).text, row[size_t(order[j])], order[j] == i});
      rep.examples.push_back(ex);
    }
    write_retrieval_report(run_dir_, rep);
  }
  return r;
}

std::vector<std::string> RetrievalTask::headline_metrics() const {
  return {"test/i2t_r1", "test/t2i_r1", "heldout/i2t_r1", "heldout/t2i_r1", "hardneg/colour_swap_accuracy",
          "hardneg/position_swap_accuracy", "zeroshot/fmnist_accuracy"};
}

std::vector<std::string> RetrievalTask::label_names() const {
  if (one_tower_) return {"image", "text"};
  return {vision::class_nouns().begin(), vision::class_nouns().end()};
}

void RetrievalTask::save_state(TaskState& state) const {
  state.put_int("data.epoch", epoch_);
  state.put_int("data.position", position_);
}

void RetrievalTask::load_state(const TaskState& state) {
  reshuffle(state.get_int("data.epoch"));
  position_ = state.get_int("data.position");
}

namespace {
TaskRegistration reg{"retrieval",
                     "image-text retrieval on caption scenes: two towers (ViT + text, CLIP style) or one MoE tower (LIMoE)",
                     [] { return std::make_unique<RetrievalTask>(); }};
}  // namespace

}  // namespace moelab::experiments
