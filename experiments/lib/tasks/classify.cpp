// Task `classify`: image classification with a ViT whose FFNs are MoE layers in the blocks the config
// chooses (vision/model/vit.h), on Fashion-MNIST (vision/data). Validation during training; the final
// evaluation adds the test set (accuracy, confusion matrix, per-patch expert maps). Routing labels are the
// classes, so the report shows which experts take which classes.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/moe/moe_layer.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/task.h"
#include "experiments/lib/tasks/classify_report.h"
#include "vision/data/fashion_mnist.h"
#include "vision/data/loader.h"
#include "vision/model/classifier.h"
#include "vision/model/vit.h"

namespace moelab::experiments {
namespace {

namespace fs = std::filesystem;
using vision::Batch;
using vision::ImageSet;

class ClassifyTask : public Task {
 public:
  void declare_config(Schema& s) const override {
    s.add_section("data", "images, the validation split, batching and augmentation");
    s.add_choice("data.dataset", "fashion_mnist", {"fashion_mnist"}, "image set (Debian's dataset-fashion-mnist)");
    s.add_string("data.dir", "", "folder with the IDX .gz files (\"\": $MOELAB_FASHION_MNIST_DIR or the package's)");
    s.add_int("data.val_size", 5000, "training images held out for validation (0: validate on the test set)")
        .at_least(0);
    s.add_int("data.split_seed", 0, "seed of the train/validation split (independent of `seed`)").at_least(0);
    s.add_int("data.train_size", 0, "use only the first N training images (0: all)").at_least(0);
    s.add_int("data.test_size", 0, "use only the first N test images (0: all)").at_least(0);
    s.add_int("data.batch_size", 128, "images per micro-batch").at_least(1);
    s.add_int("data.eval_batch_size", 500, "images per evaluation batch").at_least(1);
    s.add_int("data.augment.crop_padding", 0, "random crop after zero-padding by this many pixels (0: off)")
        .range(0, 16);
    s.add_bool("data.augment.horizontal_flip", false, "random horizontal flip");

    s.add_section("model", "the Vision Transformer (pre-LN blocks, GELU); MoE replaces the FFN of chosen blocks");
    s.add_choice("model.patch_embed", "conv", {"conv", "linear", "conv_stem"},
                 "patch embedding: strided conv, linear map of flattened patches, or 3x3 stride-2 conv stem");
    s.add_int("model.patch_size", 4, "patch side in pixels (the image side must be a multiple)").at_least(1);
    s.add_int_list("model.stem_channels", {}, "conv_stem: channels of each 3x3 conv; the last log2(patch) have stride 2, any before them stride 1");
    s.add_int("model.dim", 64, "token width").at_least(1);
    s.add_int("model.depth", 4, "transformer blocks").range(1, 64);
    s.add_int("model.num_heads", 4, "attention heads (dim must be a multiple)").at_least(1);
    s.add_float("model.mlp_ratio", 2.0, "dense FFN width / dim (also each expert's width unless model.moe.expert_d_ff)")
        .greater_than(0);
    s.add_choice("model.pool", "cls", {"cls", "mean"}, "classify from a class token or the mean of the patch tokens");
    s.add_float("model.dropout", 0.0, "residual dropout in the blocks").range(0, 0.9);
    s.add_float("model.init_std", 0.02, "std of the truncated-normal weight init").greater_than(0);
    declare_moe_config(s, 2);
    check_moe_layers_within(s, "model.depth");

    s.add_section("loss", "the training loss");
    s.add_float("loss.label_smoothing", 0.0, "label smoothing of the cross-entropy").range(0, 0.5);
    s.add_section("report", "what the run directory gets beyond the Trainer's report");
    s.add_int("report.patch_map_images", 10, "test images (one per class first) in the per-patch expert maps")
        .range(0, 64);

    s.add_check([](const Config& c, io::ConfigReporter& r) {
      const int64_t dim = c.get_int("model.dim"), heads = c.get_int("model.num_heads");
      if (dim % heads != 0)
        r.error("model.num_heads", "model.dim = " + std::to_string(dim) + " is not a multiple of model.num_heads = " +
                                       std::to_string(heads));
      const int64_t patch = c.get_int("model.patch_size");
      if (28 % patch != 0)
        r.error("model.patch_size", "model.patch_size = " + std::to_string(patch) +
                                        " does not divide the 28-pixel Fashion-MNIST images (use 2, 4, 7, 14 or 28)");
      if (c.get_string("model.patch_embed") == "conv_stem") {
        int64_t convs = 0;
        while ((int64_t{1} << convs) < patch) ++convs;
        if ((int64_t{1} << convs) != patch)
          r.error("model.patch_size", "model.patch_embed = \"conv_stem\" needs a power-of-two patch size, got " +
                                          std::to_string(patch));
        else if (static_cast<int64_t>(c.get_int_list("model.stem_channels").size()) < convs)
          r.error("model.stem_channels", "conv_stem with patch size " + std::to_string(patch) + " needs at least " +
                                             std::to_string(convs) + " channel counts (one per stride-2 conv)");
      }
    });
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    seed_ = ctx.seed;
    run_dir_ = ctx.run_dir;
    device_ = ctx.device;
    load_data(cfg);
    label_smoothing_ = cfg.get_float("loss.label_smoothing");
    eval_batch_ = cfg.get_int("data.eval_batch_size");
    patch_map_images_ = cfg.get_int("report.patch_map_images");
    vision::AugmentConfig aug{static_cast<int>(cfg.get_int("data.augment.crop_padding")),
                              cfg.get_bool("data.augment.horizontal_flip")};
    loader_ = std::make_unique<vision::ImageLoader>(train_, cfg.get_int("data.batch_size"), aug, seed_);
    vit_options_ = vit_options_from(cfg, train_);
    moe_config_ = moe_config_from(cfg);
    if (ctx.log) {
      std::string moe_desc = "dense";
      if (!vit_options_.moe_layers.empty()) {
        moe_desc = "MoE in blocks [";
        for (size_t i = 0; i < vit_options_.moe_layers.size(); ++i)
          moe_desc += (i ? ", " : "") + std::to_string(vit_options_.moe_layers[i]);
        moe_desc += "]: " + moe_config_.describe();
      }
      ctx.log("classify: Fashion-MNIST " + std::to_string(train_.count) + " train / " + std::to_string(val_.count) +
              " validation / " + std::to_string(test_.count) + " test images; ViT " +
              std::to_string(vit_options_.num_tokens()) + " tokens of width " + std::to_string(vit_options_.dim) +
              ", " + std::to_string(vit_options_.depth) + " blocks, " + moe_desc);
    }
  }

  std::shared_ptr<nn::Module> make_model() override {
    const int64_t d_ff = static_cast<int64_t>(std::llround(vit_options_.mlp_ratio * double(vit_options_.dim)));
    moe::MoELayerOptions mo{.d_model = vit_options_.dim, .d_ff = d_ff, .seq_len = vit_options_.num_tokens(),
                            .init = vit_options_.init};
    RngStream init(seed_, "init");
    return std::make_shared<vision::VisionTransformer>(vit_options_, init, [&](int64_t, RngStream& rng) {
      return std::make_shared<moe::MoELayer>(moe_config_, mo, rng);
    });
  }
  int64_t micro_batches_per_epoch() const override { return loader_->batches_per_epoch(); }
  int64_t examples_per_micro_batch() const override { return loader_->batch_size(); }

  nn::Batch next_batch(int64_t, int) override { return as_batch(loader_->next()); }

  StepResult train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) override {
    Tensor logits = model.forward(b.images, ctx);
    return {vision::classification_loss(logits, b.targets, label_smoothing_),
            {{"accuracy", vision::batch_accuracy(logits, b.targets)}},
            b.targets.numel()};
  }

  EvalResult evaluate(EvalContext& ec) override {
    EvalResult r;
    if (val_.count > 0) {
      SetEval v = evaluate_set(ec, val_);
      r.metrics["val/loss"] = v.loss;
      r.metrics["val/accuracy"] = v.confusion.accuracy();
    }
    if (ec.final || val_.count == 0) {
      ec.routing.clear();  // the report's routing heatmaps then show the test set
      SetEval t = evaluate_set(ec, test_);
      r.metrics["test_accuracy"] = t.confusion.accuracy();
      r.metrics["test_loss"] = t.loss;
      if (val_.count == 0) {
        r.metrics["val/loss"] = t.loss;
        r.metrics["val/accuracy"] = t.confusion.accuracy();
      }
      if (ec.final && !run_dir_.empty()) write_final_report(ec.model, t);
    }
    return r;
  }

  std::vector<std::string> headline_metrics() const override { return {"test_accuracy", "val/accuracy", "test_loss"}; }
  std::vector<std::string> label_names() const override { return train_.class_names; }
  std::string label_kind() const override { return "class"; }

  void save_state(TaskState& state) const override {
    state.put_int("data.epoch", loader_->epoch());
    state.put_int("data.position", loader_->position());
  }
  void load_state(const TaskState& state) override {
    loader_->set_state(state.get_int("data.epoch"), state.get_int("data.position"));
  }

 private:
  struct SetEval {
    double loss = 0;
    vision::ConfusionMatrix confusion{1};
  };

  static nn::Batch as_batch(const Batch& b) {
    nn::Batch out;
    out.images = b.images;
    out.targets = b.labels;
    out.labels = b.labels;
    return out;
  }

  static vision::ViTOptions vit_options_from(const Config& cfg, const ImageSet& set) {
    vision::ViTOptions o;
    o.image_size = set.height;
    o.channels = set.channels;
    o.num_classes = set.num_classes;
    o.patch_embed = vision::parse_patch_embed(cfg.get_string("model.patch_embed"));
    o.patch_size = cfg.get_int("model.patch_size");
    o.stem_channels = cfg.get_int_list("model.stem_channels");
    o.dim = cfg.get_int("model.dim");
    o.depth = cfg.get_int("model.depth");
    o.num_heads = cfg.get_int("model.num_heads");
    o.mlp_ratio = cfg.get_float("model.mlp_ratio");
    o.class_token = cfg.get_string("model.pool") == "cls";
    o.dropout = cfg.get_float("model.dropout");
    o.init = {nn::InitScheme::trunc_normal, cfg.get_float("model.init_std")};
    o.moe_layers = moe_blocks_from(cfg, o.depth);
    return o;
  }

  void load_data(const Config& cfg) {
    std::string dir = cfg.get_string("data.dir");
    if (dir.empty()) dir = vision::default_fashion_mnist_dir();
    ImageSet full = vision::load_fashion_mnist(dir, vision::DataPart::train);
    const int64_t val_size = cfg.get_int("data.val_size");
    if (val_size >= full.count)
      config_error(cfg, "data.val_size", "data.val_size = " + std::to_string(val_size) +
                                             " leaves no training images (the set has " + std::to_string(full.count) + ")");
    vision::SplitIndices split = vision::split_train_val(full.count, val_size, cfg.get_int("data.split_seed"));
    if (const int64_t n = cfg.get_int("data.train_size"); n > 0 && n < static_cast<int64_t>(split.train.size()))
      split.train.resize(n);
    train_ = vision::subset(full, split.train);
    val_ = vision::subset(full, split.val);
    test_ = vision::load_fashion_mnist(dir, vision::DataPart::test);
    if (const int64_t n = cfg.get_int("data.test_size"); n > 0 && n < test_.count) {
      std::vector<int64_t> first(n);
      for (int64_t i = 0; i < n; ++i) first[i] = i;
      test_ = vision::subset(test_, first);
    }
    if (train_.count < cfg.get_int("data.batch_size"))
      config_error(cfg, "data.batch_size", "data.batch_size = " + std::to_string(cfg.get_int("data.batch_size")) +
                                               " exceeds the " + std::to_string(train_.count) + " training images");
  }

  [[noreturn]] static void config_error(const Config& cfg, const std::string& key, const std::string& message) {
    throw ConfigError({cfg.origin(key).str() + ": " + message});
  }

  SetEval evaluate_set(EvalContext& ec, const ImageSet& set) {
    SetEval out;
    out.confusion = vision::ConfusionMatrix(set.num_classes);
    double loss_sum = 0;
    for (int64_t start = 0; start < set.count; start += eval_batch_) {
      const nn::Batch b = as_batch(vision::batch_range(set, start, eval_batch_)).to(device_);
      Tensor logits = ec.run(b, [&](nn::ForwardContext& ctx) { return ec.model.forward(b.images, ctx); });
      const int64_t n = b.targets.numel();
      loss_sum += vision::classification_loss(logits, b.targets).item() * static_cast<double>(n);
      out.confusion.add(b.labels.to_vector<int64_t>(), vision::predicted_classes(logits));
    }
    out.loss = set.count > 0 ? loss_sum / static_cast<double>(set.count) : 0.0;
    return out;
  }

  // Test images for the per-patch maps: the first image of each class in class order, then the next ones.
  std::vector<int64_t> patch_map_indices() const {
    std::vector<int64_t> picked;
    for (int c = 0; c < test_.num_classes && static_cast<int64_t>(picked.size()) < patch_map_images_; ++c)
      for (int64_t i = 0; i < test_.count; ++i)
        if (test_.labels[i] == c) {
          picked.push_back(i);
          break;
        }
    for (int64_t i = 0; i < test_.count && static_cast<int64_t>(picked.size()) < patch_map_images_; ++i)
      if (std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
    return picked;
  }

  void write_final_report(nn::Module& model, const SetEval& t) {
    ClassifyReport rep;
    rep.set_name = "test";
    rep.accuracy = t.confusion.accuracy();
    rep.loss = t.loss;
    rep.confusion = t.confusion;
    rep.class_names = test_.class_names;
    // Per-patch maps come from one more forward of a few test images, keeping each layer's routing record.
    const std::vector<int64_t> picked = patch_map_indices();
    if (!vit_options_.moe_layers.empty() && !picked.empty()) {
      const nn::Batch b = as_batch(vision::make_batch(test_, picked)).to(device_);
      moe::RoutingLog log(true);
      nn::ForwardContext ctx(b);
      ctx.routing = &log;
      model.forward(b.images, ctx);
      const int64_t tokens = vit_options_.num_tokens(), first = vit_options_.class_token ? 1 : 0;
      vision::PatchMapPicture pic;
      pic.image_indices = picked;
      pic.scale = 5;
      for (const auto& [path, tally] : log.layers()) {
        pic.num_experts = std::max<int>(pic.num_experts, static_cast<int>(tally.num_experts));
        const moe::RoutingRecord* rec = log.record(path);
        if (!rec) continue;  // soft_moe: no discrete choice
        pic.layers.push_back(vision::patch_expert_map(*rec, static_cast<int64_t>(picked.size()), tokens, first,
                                                      vit_options_.grid_size()));
        pic.row_names.push_back(path);
      }
      if (!pic.layers.empty()) {
        cv::Mat png = vision::render_patch_maps(test_, pic);
        fs::create_directories(fs::path(run_dir_) / "routing");
        vision::write_png((fs::path(run_dir_) / "routing" / "patch_maps.png").string(), png);
        rep.patch_map_png = vision::base64_encode(vision::encode_png(png));
        rep.patch_map_caption = "Test images (top row) and, below, one row per MoE layer: each patch tinted with the "
                                "colour of the expert its token was sent to (its highest-weight expert); grey = "
                                "dropped by capacity. Also in routing/patch_maps.png.";
      }
    }
    write_classify_report(run_dir_, rep);
  }


  uint64_t seed_ = 0;
  Device device_ = Device::cpu();
  std::string run_dir_;
  ImageSet train_, val_, test_;
  std::unique_ptr<vision::ImageLoader> loader_;
  vision::ViTOptions vit_options_;
  moe::MoEConfig moe_config_;
  double label_smoothing_ = 0;
  int64_t eval_batch_ = 500, patch_map_images_ = 10;
};

TaskRegistration reg{"classify", "image classification with a (MoE) Vision Transformer on Fashion-MNIST",
                     [] { return std::make_unique<ClassifyTask>(); }};

}  // namespace
}  // namespace moelab::experiments
