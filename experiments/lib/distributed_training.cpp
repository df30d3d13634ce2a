// Several ranks of one run: micro-batch sharding, gradient all-reduce, results exchange, path agreement.
#include "experiments/lib/distributed_training.h"

#include <algorithm>
#include <cstdlib>

#include "core/autograd/autograd.h"
#include "core/dist/grad_sync.h"
#include "core/moe/moe_layer.h"

namespace moelab::experiments {

namespace {

// One micro-batch's results as numbers: [micro, loss, examples, n_aux, aux..., n_metrics, metrics...,
// n_layers, per layer: E, forwards, tokens, assignments, dropped, entropy, confidence, n_labels,
// label_counts..., expert_counts...]. Aux and metric names and layer paths are the same on every rank
// (the same model and task), so only the values travel.
void pack(const MicroBatchOutcome& m, int micro, std::vector<double>& out) {
  out.push_back(micro);
  out.push_back(m.loss);
  out.push_back(static_cast<double>(m.result.examples));
  out.push_back(static_cast<double>(m.aux_values.size()));
  out.insert(out.end(), m.aux_values.begin(), m.aux_values.end());
  out.push_back(static_cast<double>(m.result.metrics.size()));
  for (const auto& [k, v] : m.result.metrics) out.push_back(v);
  out.push_back(static_cast<double>(m.routing.layers().size()));
  for (const auto& [path, t] : m.routing.layers()) {
    out.insert(out.end(), {double(t.num_experts), double(t.forwards), double(t.tokens), t.assignments, t.dropped,
                           t.entropy_sum, t.confidence_sum, double(t.label_counts.size())});
    out.insert(out.end(), t.label_counts.begin(), t.label_counts.end());
    out.insert(out.end(), t.expert_counts.begin(), t.expert_counts.end());
  }
}

// The inverse of pack, names taken from `like` (one of this rank's own micro-batches); reads from v[at].
MicroBatchOutcome unpack(const std::vector<double>& v, size_t& at, const MicroBatchOutcome& like) {
  auto next = [&] {
    MOELAB_CHECK(at < v.size(), "distributed training: a rank's micro-batch results are cut short");
    return v[at++];
  };
  MicroBatchOutcome m;
  m.loss = next();
  m.result.examples = static_cast<int64_t>(next());
  const size_t n_aux = static_cast<size_t>(next());
  MOELAB_CHECK(n_aux == like.aux.size(), "distributed training: ranks report " << n_aux << " and " << like.aux.size()
                                                                                << " auxiliary losses for one micro-batch");
  for (size_t i = 0; i < n_aux; ++i) {
    m.aux_values.push_back(next());
    m.aux.push_back({like.aux[i].module, like.aux[i].name, Tensor::scalar(m.aux_values.back(), DType::f64), like.aux[i].weight});
  }
  const size_t n_metrics = static_cast<size_t>(next());
  MOELAB_CHECK(n_metrics == like.result.metrics.size(), "distributed training: ranks report different training metrics");
  for (const auto& [k, unused] : like.result.metrics) m.result.metrics[k] = next();
  const size_t n_layers = static_cast<size_t>(next());
  MOELAB_CHECK(n_layers == like.routing.layers().size(), "distributed training: ranks report different MoE layers");
  for (size_t l = 0; l < n_layers; ++l) {
    const auto& [path, own] = like.routing.layers()[l];
    moe::RoutingTally t(static_cast<int64_t>(next()));
    t.forwards = static_cast<int64_t>(next());
    t.tokens = static_cast<int64_t>(next());
    t.assignments = next();
    t.dropped = next();
    t.entropy_sum = next();
    t.confidence_sum = next();
    t.label_counts.resize(static_cast<size_t>(next()));
    for (double& c : t.label_counts) c = next();
    for (double& c : t.expert_counts) c = next();
    t.has_bias = own.has_bias, t.bias_min = own.bias_min, t.bias_max = own.bias_max;
    m.routing.layer(path, t.num_experts).merge(t);
  }
  return m;
}

}  // namespace

void declare_distributed_config(Schema& s) {
  s.add_section("dist", "several ranks under mpirun (docs/distributed.md); ignored by a single process");
  s.add_int("dist.expert_parallel", 1,
            "ranks that share each MoE layer's experts (consecutive ranks form a group; the rest is data parallel)")
      .at_least(1);
  s.add_int("dist.bucket_mb", 25, "MiB per gradient all-reduce bucket").at_least(1);
}

DistributedTraining::DistributedTraining(const Config& cfg, Device device)
    : comm_(&dist::communicator_for(device)),
      rank_(comm_->rank()),
      size_(comm_->size()),
      expert_parallel_(static_cast<int>(cfg.get_int("dist.expert_parallel"))),
      bucket_bytes_(cfg.get_int("dist.bucket_mb") << 20) {
  std::vector<std::string> problems;
  const int64_t accum = cfg.get_int("train.grad_accum");
  if (accum % size_ != 0)
    problems.push_back(cfg.origin("train.grad_accum").str() + ": train.grad_accum = " + std::to_string(accum) +
                       " is not a multiple of the " + std::to_string(size_) +
                       " ranks: each rank trains whole micro-batches of a step (set train.grad_accum = " +
                       std::to_string(size_) + " and divide the batch size by " + std::to_string(size_) +
                       " to keep a one-process run's global batch)");
  if (size_ % expert_parallel_ != 0)
    problems.push_back(cfg.origin("dist.expert_parallel").str() + ": dist.expert_parallel = " +
                       std::to_string(expert_parallel_) + " does not divide the " + std::to_string(size_) + " ranks");
  if (!problems.empty()) throw ConfigError(problems);
  if (const char* env = std::getenv("MOELAB_TEST_FAIL_RANK")) {
    const std::string v = env;
    const size_t colon = v.find(':');
    MOELAB_CHECK(colon != std::string::npos, "MOELAB_TEST_FAIL_RANK=" << v << " is not RANK:STEP");
    fail_rank_ = std::stoi(v.substr(0, colon));
    fail_step_ = std::stoll(v.substr(colon + 1));
  }
}

void DistributedTraining::attach_moe_layers(nn::Module& model, const Config& cfg) const {
  if (!active()) return;
  std::vector<std::string> problems;
  const auto layers = moe::find_moe_layers(model);
  const bool collectives = expert_parallel_ > 1 || std::any_of(layers.begin(), layers.end(), [](const auto& l) {
                             return l.second->cfg.switch_loss_scope == moe::BalanceScope::global;
                           });
  if (collectives && !layers.empty() && cfg.get_int("train.workers") > 1)
    problems.push_back(cfg.origin("train.workers").str() + ": train.workers = " + std::to_string(cfg.get_int("train.workers")) +
                       ": MoE layers that communicate (dist.expert_parallel > 1 or switch_loss_scope = \"global\") "
                       "need train.workers = 1 under mpirun");
  for (const auto& [path, layer] : layers) {
    layer->parallel.comm = comm_;
    if (expert_parallel_ == 1) continue;
    if (layer->cfg.num_experts % expert_parallel_ != 0)
      problems.push_back(cfg.origin("dist.expert_parallel").str() + ": dist.expert_parallel = " +
                         std::to_string(expert_parallel_) + " does not divide the " + std::to_string(layer->cfg.num_experts) +
                         " experts of " + path);
    else if (layer->router->mixes_tokens())
      problems.push_back(cfg.origin("dist.expert_parallel").str() + ": dist.expert_parallel = " +
                         std::to_string(expert_parallel_) + ": router " + layer->cfg.router + " of " + path +
                         " mixes tokens into slots; expert parallelism needs a router that sends tokens to experts");
    layer->parallel.expert_first_rank = rank_ / expert_parallel_ * expert_parallel_;
    layer->parallel.expert_ranks = expert_parallel_;
  }
  if (!problems.empty()) throw ConfigError(problems);
}

void DistributedTraining::broadcast_model(nn::Module& model) const {
  if (!active()) return;
  NoGradGuard no_grad;
  std::vector<Tensor> state;
  for (const auto& [name, t] : model.state_dict()) state.push_back(t);
  dist::broadcast_parameters(*comm_, state, 0);
}

int64_t DistributedTraining::finish_backward(std::vector<MicroBatchOutcome>& micro, const std::vector<Tensor>& params,
                                             int64_t step) const {
  if (!active()) return 0;
  if (rank_ == fail_rank_ && step + 1 == fail_step_)
    MOELAB_FAIL("injected failure on rank " << rank_ << " (MOELAB_TEST_FAIL_RANK)");
  // Each micro-batch's loss was already divided by grad_accum: the plain sum is the step's gradient.
  const int64_t bytes = dist::all_reduce_gradients(*comm_, params, 1.0, bucket_bytes_);
  std::vector<double> mine;
  const MicroBatchOutcome* like = nullptr;
  for (int i = 0; i < static_cast<int>(micro.size()); ++i)
    if (trains_micro(i)) {
      pack(micro[i], i, mine);
      if (!like) like = &micro[i];
    }
  MOELAB_CHECK(like, "distributed training: rank " << rank_ << " trained no micro-batch");
  const std::vector<double> all = comm_->all_gather(mine);
  size_t at = 0;
  while (at < all.size()) {
    const int i = static_cast<int>(all[at++]);
    MOELAB_CHECK(i >= 0 && i < static_cast<int>(micro.size()), "distributed training: micro-batch " << i << " out of range");
    if (!trains_micro(i)) micro[i] = unpack(all, at, *like);
    else {
      MicroBatchOutcome skip = unpack(all, at, *like);  // our own, already in place
      (void)skip;
    }
  }
  return bytes;
}

bool DistributedTraining::any(bool flag) const {
  if (!active()) return flag;
  std::vector<int64_t> v{flag ? 1 : 0};
  comm_->all_reduce_sum(v);
  return v[0] > 0;
}

std::filesystem::path agree_on_path(const std::filesystem::path& path) {
  dist::Communicator& comm = dist::world();
  if (comm.size() == 1) return path;
  const std::string s = path.string();
  std::vector<int64_t> n{static_cast<int64_t>(s.size())};
  comm.broadcast(n, 0);
  std::vector<int32_t> chars(static_cast<size_t>(n[0]));
  if (comm.rank() == 0)
    for (size_t i = 0; i < s.size(); ++i) chars[i] = static_cast<unsigned char>(s[i]);
  comm.broadcast(chars, 0);
  std::string out;
  for (int32_t c : chars) out.push_back(static_cast<char>(c));
  return out;
}

void DistributedTraining::barrier() const {
  if (active()) comm_->barrier();
}

}  // namespace moelab::experiments
