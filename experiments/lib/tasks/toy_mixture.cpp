// Task `toy_mixture`: regression on a mixture of functions (data/mixture_data.h), the smallest problem where
// experts should specialize. The cluster id is the routing label, so the report's clusters x experts
// heatmap and its mutual information show whether routing found the clusters.
// Model: models/residual_mlp.h, with MoE FFNs in the blocks model.moe.every / model.moe.layers choose.
#include <algorithm>
#include <numeric>

#include "core/ops/ops.h"
#include "experiments/lib/data/mixture_data.h"
#include "experiments/lib/models/residual_mlp.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/task.h"

namespace moelab::experiments {
namespace {

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
    declare_moe_config(s, 1);
    check_moe_layers_within(s, "model.layers");
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    cfg_ = cfg;
    seed_ = ctx.seed;
    batch_ = cfg.get_int("data.batch_size");
    clusters_ = cfg.get_int("data.clusters");
    MixtureOfFunctions data({clusters_, cfg.get_int("data.input_dim"), cfg.get_int("data.output_dim"),
                             cfg.get_int("data.teacher_hidden"), cfg.get_float("data.center_radius"),
                             cfg.get_float("data.spread")},
                            seed_);
    train_ = data.sample(cfg.get_int("data.train_size"), RngStream(seed_, "data.train"), cfg.get_float("data.target_noise"));
    eval_ = data.sample(cfg.get_int("data.eval_size"), RngStream(seed_, "data.eval"), 0.0);
    const std::vector<float> ey = eval_.y.to_vector<float>();
    double mean = 0, sq = 0;
    for (float v : ey) mean += v;
    mean /= static_cast<double>(ey.size());
    for (float v : ey) sq += (v - mean) * (v - mean);
    eval_target_var_ = std::max(1e-12, sq / static_cast<double>(ey.size()));
    batches_per_epoch_ = std::max<int64_t>(1, cfg.get_int("data.train_size") / batch_);
    for (Tensor* t : {&train_.x, &train_.y, &eval_.x, &eval_.y}) *t = t->to(ctx.device);
    if (ctx.log)
      ctx.log("toy_mixture: " + std::to_string(clusters_) + " clusters, " + std::to_string(train_.labels.size()) +
              " training examples, " + std::to_string(batches_per_epoch_) + " micro-batches per epoch");
  }

  std::shared_ptr<nn::Module> make_model() override {
    RngStream init(seed_, "init");
    ResidualMlpOptions o{train_.x.size(1), train_.y.size(1), cfg_.get_int("model.d_model"), cfg_.get_int("model.d_ff"),
                         cfg_.get_int("model.layers"), moe_blocks_from(cfg_, cfg_.get_int("model.layers")),
                         moe_config_from(cfg_), batch_};
    return std::make_shared<ResidualMlp>(o, init);
  }
  int64_t micro_batches_per_epoch() const override { return batches_per_epoch_; }
  int64_t examples_per_micro_batch() const override { return batch_; }

  // The data position is the only data state: epoch e's order is a permutation drawn from (seed, e).
  nn::Batch next_batch(int64_t, int) override {
    const int64_t epoch = position_ / batches_per_epoch_, index = position_ % batches_per_epoch_;
    if (epoch != order_epoch_) shuffle_for(epoch);
    ++position_;
    std::vector<int64_t> rows(order_.begin() + index * batch_, order_.begin() + (index + 1) * batch_);
    return examples(train_, rows);
  }

  StepResult train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) override {
    return {mse_loss(model.forward(b.features, ctx), b.targets), {}, batch_};
  }

  EvalResult evaluate(EvalContext& ec) override {
    const int64_t n = static_cast<int64_t>(eval_.labels.size()), out = eval_.y.size(1);
    double sq_err = 0;
    std::vector<double> cluster_err(clusters_, 0.0), cluster_n(clusters_, 0.0);
    for (int64_t start = 0; start < n; start += batch_) {
      std::vector<int64_t> rows(static_cast<size_t>(std::min(n, start + batch_) - start));
      std::iota(rows.begin(), rows.end(), start);
      const nn::Batch b = examples(eval_, rows);
      const std::vector<float> err =
          ec.run(b, [&](nn::ForwardContext& ctx) { return sum(square(ec.model.forward(b.features, ctx) - b.targets), {1}); })
              .to_vector<float>();
      for (size_t i = 0; i < rows.size(); ++i) {
        sq_err += err[i];
        cluster_err[eval_.labels[rows[i]]] += err[i];
        cluster_n[eval_.labels[rows[i]]] += 1;
      }
    }
    const double mse = sq_err / static_cast<double>(n * out);
    double worst = 0;
    for (int64_t c = 0; c < clusters_; ++c)
      if (cluster_n[c] > 0) worst = std::max(worst, cluster_err[c] / (cluster_n[c] * static_cast<double>(out)));
    return {{{"val/loss", mse}, {"val/r2", 1.0 - mse / eval_target_var_}, {"val/worst_cluster_loss", worst}}};
  }

  std::vector<std::string> headline_metrics() const override { return {"val/loss", "val/r2"}; }
  std::vector<std::string> label_names() const override {
    std::vector<std::string> names;
    for (int64_t c = 0; c < clusters_; ++c) names.push_back("cluster " + std::to_string(c));
    return names;
  }
  std::string label_kind() const override { return "cluster"; }

  void save_state(TaskState& state) const override { state.put_int("data.position", position_); }
  void load_state(const TaskState& state) override {
    position_ = state.get_int("data.position");
    order_epoch_ = -1;
  }

 private:
  static nn::Batch examples(const MixtureSet& set, const std::vector<int64_t>& rows) {
    const int64_t n = static_cast<int64_t>(rows.size());
    const Tensor idx = Tensor::from_vector(rows, Shape{n}, set.x.device());
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) labels[i] = set.labels[rows[i]];
    nn::Batch b;
    b.features = index_select(set.x, idx);
    b.targets = index_select(set.y, idx);
    b.labels = Tensor::from_vector(labels, Shape{n});
    return b;
  }

  void shuffle_for(int64_t epoch) {
    const int64_t n = static_cast<int64_t>(train_.labels.size());
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    RngStream rng(seed_, "data.order." + std::to_string(epoch));
    for (int64_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
    order_epoch_ = epoch;
  }

  Config cfg_;
  uint64_t seed_ = 0;
  int64_t clusters_ = 0, batch_ = 0, batches_per_epoch_ = 1;
  double eval_target_var_ = 1.0;
  MixtureSet train_, eval_;
  int64_t position_ = 0, order_epoch_ = -1;
  std::vector<int64_t> order_;
};

TaskRegistration reg{"toy_mixture", "MoE regression on a mixture of functions (one random function per input cluster)",
                     [] { return std::make_unique<ToyMixtureTask>(); }};

}  // namespace
}  // namespace moelab::experiments
