// Task `toy_mixture`: regression on a mixture of functions, the smallest problem where experts should
// specialize. Inputs come from C well-separated Gaussian clusters; each cluster has its own random
// teacher y = A_c tanh(W_c x + b_c), so one shared FFN must fit C unrelated functions while an MoE
// layer can give each cluster an expert. The cluster id is the routing-monitor label, so the report's
// labels x experts heatmap and its mutual information show whether routing found the clusters.
//
// Model: x -> Linear(in, d) -> L residual blocks h += FFN(LayerNorm(h)) -> LayerNorm -> Linear(d, out),
// where FFN is an MoE layer (model.moe.*) in blocks chosen by model.moe_every, else a dense MLP.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>

#include "core/io/atomic_file.h"
#include "core/io/text_util.h"
#include "core/moe/moe_layer.h"
#include "core/nn/layers.h"
#include "core/nn/mlp.h"
#include "core/ops/ops.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/task.h"

namespace moelab::experiments {
namespace {

namespace fs = std::filesystem;

struct Dataset {
  Tensor x;                     // (N, in) f32
  Tensor y;                     // (N, out) f32
  std::vector<int64_t> labels;  // (N) cluster ids
};

class ToyNet : public nn::Module {
 public:
  // batch: examples per forward, the "sequence" of the MoE layers (Soft MoE sizes its slots from it).
  ToyNet(int64_t in, int64_t out, int64_t d, int64_t d_ff, int64_t layers, int64_t moe_every, int64_t batch,
         const moe::MoEConfig& mc, RngStream& rng)
      : Module("ToyNet") {
    input = register_module("input", std::make_shared<nn::Linear>(in, d, true, rng));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < layers; ++i) {
      auto block = std::make_shared<Block>();
      block->norm = block->register_module("norm", std::make_shared<nn::LayerNorm>(d));
      bool is_moe = moe_every > 0 && (i + 1) % moe_every == 0;
      if (is_moe) {
        moe::MoELayerOptions o;
        o.d_model = d;
        o.d_ff = d_ff;
        o.seq_len = batch;
        block->ffn = block->register_module("ffn", std::make_shared<moe::MoELayer>(mc, o, rng));
      } else {
        nn::MlpOptions o;
        o.dim = d;
        o.hidden = d_ff;
        block->ffn = block->register_module("ffn", std::make_shared<nn::MLP>(o, rng));
      }
      blocks->push_back(block);
    }
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(d));
    head = register_module("head", std::make_shared<nn::Linear>(d, out, true, rng));
  }

  // x: (B, in) -> y: (B, out), with every MoE layer's balancing terms named "blocks.<i>.ffn.<term>".
  nn::ForwardOutput forward_aux(const Tensor& x) override {
    nn::ForwardOutput out;
    Tensor h = input->forward(x);
    for (size_t i = 0; i < blocks->size(); ++i) {
      auto& block = static_cast<Block&>((*blocks)[i]);
      nn::ForwardOutput f = block.ffn->forward_aux(block.norm->forward(h));
      h = h + f.y;
      out.absorb("blocks." + std::to_string(i) + ".ffn", std::move(f));
    }
    out.y = head->forward(norm->forward(h));
    return out;
  }
  Tensor forward(const Tensor& x) override { return forward_aux(x).y; }

  struct Block : nn::Module {
    Block() : Module("Block") {}
    std::shared_ptr<nn::LayerNorm> norm;
    std::shared_ptr<nn::Module> ffn;
  };
  std::shared_ptr<nn::Linear> input, head;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
};

class ToyMixtureTask : public Task {
 public:
  void declare_config(Schema& s) const override {
    s.add_section("data", "the synthetic mixture: C clusters, one random teacher function per cluster");
    s.add_int("data.clusters", 4, "number of input clusters (each with its own function); the routing label").range(1, 64);
    s.add_int("data.input_dim", 8, "input dimension").range(1, 1024);
    s.add_int("data.output_dim", 4, "output dimension").range(1, 1024);
    s.add_int("data.teacher_hidden", 16, "hidden width of each cluster's teacher function").range(1, 1024);
    s.add_float("data.center_radius", 4.0, "distance of the cluster centres from the origin").greater_than(0);
    s.add_float("data.spread", 1.0, "standard deviation of the inputs around their centre").greater_than(0);
    s.add_float("data.target_noise", 0.0, "standard deviation of Gaussian noise added to training targets").at_least(0);
    s.add_int("data.train_size", 8192, "training examples").at_least(1);
    s.add_int("data.eval_size", 2048, "evaluation examples").at_least(1);
    s.add_int("data.batch_size", 128, "examples per micro-batch").at_least(1);

    s.add_check([](const Config& c, io::ConfigReporter& r) {
      if (c.get_int("data.batch_size") > c.get_int("data.train_size"))
        r.error("data.batch_size", "data.batch_size = " + std::to_string(c.get_int("data.batch_size")) +
                                       " exceeds data.train_size = " + std::to_string(c.get_int("data.train_size")));
    });

    s.add_section("model", "x -> Linear -> blocks of h += FFN(LayerNorm(h)) -> LayerNorm -> Linear");
    s.add_int("model.d_model", 32, "model width").range(1, 4096);
    s.add_int("model.d_ff", 64, "hidden width of the dense FFN (and of each expert unless model.moe.expert_d_ff)").range(1, 16384);
    s.add_int("model.layers", 2, "number of residual blocks").range(1, 64);
    s.add_int("model.moe_every", 1, "blocks i with (i+1) % moe_every == 0 use an MoE FFN (1: all, 0: a dense model)").at_least(0);
    declare_moe_config(s);

    s.add_section("debug", "testing aids");
    s.add_int("debug.nan_at_step", 0, "feed NaN inputs at this (1-based) step to exercise the NaN guard (0: never)").at_least(0);
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    seed_ = ctx.seed;
    run_dir_ = ctx.run_dir;
    clusters_ = cfg.get_int("data.clusters");
    in_ = cfg.get_int("data.input_dim");
    out_ = cfg.get_int("data.output_dim");
    batch_ = cfg.get_int("data.batch_size");
    nan_at_step_ = cfg.get_int("debug.nan_at_step");
    make_teachers(cfg);
    train_ = sample(cfg.get_int("data.train_size"), RngStream(seed_, "data.train"), cfg.get_float("data.target_noise"));
    eval_ = sample(cfg.get_int("data.eval_size"), RngStream(seed_, "data.eval"), 0.0);
    std::vector<float> ey = eval_.y.to_vector<float>();
    double mean = 0, sq = 0;
    for (float v : ey) mean += v;
    mean /= static_cast<double>(ey.size());
    for (float v : ey) sq += (v - mean) * (v - mean);
    eval_target_var_ = std::max(1e-12, sq / static_cast<double>(ey.size()));
    batches_per_epoch_ = std::max<int64_t>(1, cfg.get_int("data.train_size") / batch_);
    device_ = ctx.device;
    for (Tensor* t : {&train_.x, &train_.y, &eval_.x, &eval_.y}) *t = t->to(device_);

    RngStream init(seed_, "init");
    model_ = std::make_shared<ToyNet>(in_, out_, cfg.get_int("model.d_model"), cfg.get_int("model.d_ff"),
                                      cfg.get_int("model.layers"), cfg.get_int("model.moe_every"), batch_, moe_config_from(cfg), init);
    model_->to(device_);
    model_->train();
    if (ctx.log)
      ctx.log("toy_mixture: " + std::to_string(clusters_) + " clusters, " + std::to_string(train_.labels.size()) +
              " training examples, " + std::to_string(batches_per_epoch_) + " micro-batches per epoch");
  }

  NamedTensors named_parameters() override { return model_->named_parameters(); }
  int64_t micro_batches_per_epoch() const override { return batches_per_epoch_; }

  StepResult train_step(int64_t step, int micro) override {
    // The position in the data stream is the only data state: epoch e's order is a permutation drawn
    // from (seed, e), so resuming needs just the count of micro-batches consumed.
    int64_t epoch = position_ / batches_per_epoch_, index = position_ % batches_per_epoch_;
    if (epoch != order_epoch_) shuffle_for(epoch);
    ++position_;
    std::vector<int64_t> rows(order_.begin() + index * batch_, order_.begin() + (index + 1) * batch_);
    Tensor idx = Tensor::from_vector(rows, Shape{batch_}, device_);
    Tensor x = index_select(train_.x, idx), y = index_select(train_.y, idx);
    if (nan_at_step_ > 0 && step + 1 == nan_at_step_) x = x * std::numeric_limits<double>::quiet_NaN();
    std::vector<int64_t> labels(batch_);
    for (int64_t i = 0; i < batch_; ++i) labels[i] = train_.labels[rows[i]];

    begin_routing_window(*model_);
    set_moe_labels(*model_, Tensor::from_vector(labels, Shape{batch_}));
    nn::ForwardOutput f = model_->forward_aux(x);
    StepResult r;
    r.loss = mse_loss(f.y, y);
    r.aux_losses = std::move(f.aux_losses);
    r.routing = end_routing_window(*model_, clusters_);
    r.examples = batch_;
    return r;
  }

  void after_optimizer_step(int64_t) override { model_->after_optimizer_step_all(); }

  EvalResult evaluate(int64_t) override {
    RoutingNoiseGuard keep_training_draws(*model_);
    model_->eval();
    begin_routing_window(*model_);
    const int64_t n = static_cast<int64_t>(eval_.labels.size());
    double sq_err = 0, count = 0;
    std::vector<double> per_cluster_err(clusters_, 0.0), per_cluster_n(clusters_, 0.0);
    for (int64_t start = 0; start < n; start += batch_) {
      int64_t end = std::min(n, start + batch_);
      Tensor x = eval_.x.slice(0, start, end), y = eval_.y.slice(0, start, end);
      std::vector<int64_t> labels(eval_.labels.begin() + start, eval_.labels.begin() + end);
      set_moe_labels(*model_, Tensor::from_vector(labels, Shape{end - start}));
      Tensor err = square(model_->forward(x) - y);  // (b, out)
      if (start == 0) write_token_samples(labels);
      std::vector<float> e = sum(err, {1}).to_vector<float>();
      for (int64_t i = 0; i < end - start; ++i) {
        sq_err += e[i];
        per_cluster_err[labels[i]] += e[i];
        per_cluster_n[labels[i]] += 1;
      }
      count += static_cast<double>((end - start) * out_);
    }
    EvalResult r;
    r.routing = end_routing_window(*model_, clusters_);
    set_moe_labels(*model_, Tensor());
    model_->train();
    double mse = sq_err / count;
    r.metrics["val/loss"] = mse;
    r.metrics["val/r2"] = 1.0 - mse / eval_target_var_;
    double worst = 0;
    for (int64_t c = 0; c < clusters_; ++c)
      if (per_cluster_n[c] > 0) worst = std::max(worst, per_cluster_err[c] / (per_cluster_n[c] * out_));
    r.metrics["val/worst_cluster_loss"] = worst;
    return r;
  }

  std::vector<std::string> headline_metrics() const override { return {"val/loss", "val/r2"}; }
  std::vector<std::string> label_names() const override {
    std::vector<std::string> names;
    for (int64_t c = 0; c < clusters_; ++c) names.push_back("cluster " + std::to_string(c));
    return names;
  }
  std::string label_kind() const override { return "cluster"; }

  void save_state(TaskState& state) const override {
    state.put_int("data.position", position_);
    save_model_state(*model_, state);
  }
  void load_state(const TaskState& state) override {
    position_ = state.get_int("data.position");
    order_epoch_ = -1;
    load_model_state(*model_, state);
  }

 private:
  // routing/tokens_<layer path>.csv: the routing of the first evaluation batch, one line per
  // (example, slot), with the example's cluster; overwritten at each evaluation.
  void write_token_samples(const std::vector<int64_t>& labels) const {
    if (run_dir_.empty()) return;
    for (auto& [path, layer] : moe::find_moe_layers(*model_)) {
      const moe::RoutingRecord& rec = layer->last_record();
      if (rec.num_tokens == 0) continue;  // soft_moe has no discrete choice
      std::string csv = "token,cluster,slot,expert,weight,kept\n";
      for (const auto& t : moe::token_records(rec, 64))
        for (size_t k = 0; k < t.experts.size(); ++k)
          csv += std::to_string(t.token) + "," + std::to_string(labels[t.token]) + "," + std::to_string(k) + "," +
                 std::to_string(t.experts[k]) + "," + io::format_double(t.weights[k]) + "," + std::to_string(int(t.kept[k])) + "\n";
      fs::create_directories(fs::path(run_dir_) / "routing");
      io::write_file_atomic((fs::path(run_dir_) / "routing" / ("tokens_" + path + ".csv")).string(), csv);
    }
  }

  void make_teachers(const Config& cfg) {
    RngStream rng(seed_, "teacher");
    const int64_t h = cfg.get_int("data.teacher_hidden");
    const double radius = cfg.get_float("data.center_radius");
    spread_ = cfg.get_float("data.spread");
    centers_.assign(clusters_ * in_, 0.0);
    for (int64_t c = 0; c < clusters_; ++c) {
      double norm = 0;
      for (int64_t j = 0; j < in_; ++j) norm += std::pow(centers_[c * in_ + j] = rng.normal(), 2);
      for (int64_t j = 0; j < in_; ++j) centers_[c * in_ + j] *= radius / std::sqrt(norm);
    }
    teachers_.clear();
    for (int64_t c = 0; c < clusters_; ++c) {
      Teacher t;
      t.w.resize(h * in_);
      t.b.resize(h);
      t.a.resize(out_ * h);
      // Inputs are centred on their cluster before the teacher sees them, so every function varies
      // over its own cluster (rather than saturating far from the origin).
      for (auto& v : t.w) v = rng.normal() * 1.5 / (spread_ * std::sqrt(static_cast<double>(in_)));
      for (auto& v : t.b) v = rng.normal() * 0.5;
      for (auto& v : t.a) v = rng.normal() * 1.5 / std::sqrt(static_cast<double>(h));
      teachers_.push_back(std::move(t));
    }
  }

  Dataset sample(int64_t n, RngStream rng, double target_noise) {
    std::vector<float> xs(n * in_), ys(n * out_);
    Dataset d;
    d.labels.resize(n);
    const int64_t h = static_cast<int64_t>(teachers_[0].b.size());
    std::vector<double> centred(in_), hidden(h);
    for (int64_t i = 0; i < n; ++i) {
      int64_t c = static_cast<int64_t>(rng.below(static_cast<uint64_t>(clusters_)));
      d.labels[i] = c;
      for (int64_t j = 0; j < in_; ++j) {
        centred[j] = spread_ * rng.normal();
        xs[i * in_ + j] = static_cast<float>(centers_[c * in_ + j] + centred[j]);
      }
      const Teacher& t = teachers_[c];
      for (int64_t k = 0; k < h; ++k) {
        double z = t.b[k];
        for (int64_t j = 0; j < in_; ++j) z += t.w[k * in_ + j] * centred[j];
        hidden[k] = std::tanh(z);
      }
      for (int64_t o = 0; o < out_; ++o) {
        double v = 0;
        for (int64_t k = 0; k < h; ++k) v += t.a[o * h + k] * hidden[k];
        if (target_noise > 0) v += target_noise * rng.normal();
        ys[i * out_ + o] = static_cast<float>(v);
      }
    }
    d.x = Tensor::from_vector(xs, Shape{n, in_});
    d.y = Tensor::from_vector(ys, Shape{n, out_});
    return d;
  }

  void shuffle_for(int64_t epoch) {
    const int64_t n = static_cast<int64_t>(train_.labels.size());
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    RngStream rng(seed_, "data.order." + std::to_string(epoch));
    for (int64_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
    order_epoch_ = epoch;
  }

  struct Teacher {
    std::vector<double> w, b, a;
  };
  uint64_t seed_ = 0;
  Device device_ = Device::cpu();
  std::string run_dir_;
  int64_t clusters_ = 0, in_ = 0, out_ = 0, batch_ = 0, batches_per_epoch_ = 1, nan_at_step_ = 0;
  double spread_ = 1.0, eval_target_var_ = 1.0;
  std::vector<double> centers_;
  std::vector<Teacher> teachers_;
  Dataset train_, eval_;
  std::shared_ptr<ToyNet> model_;
  int64_t position_ = 0, order_epoch_ = -1;
  std::vector<int64_t> order_;
};

TaskRegistration reg{"toy_mixture", "MoE regression on a mixture of functions (one random function per input cluster)",
                     [] { return std::make_unique<ToyMixtureTask>(); }};

}  // namespace
}  // namespace moelab::experiments
