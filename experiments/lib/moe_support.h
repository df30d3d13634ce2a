#pragma once
// What every task with MoE layers needs from the program side: the `model.moe.*` config keys (from
// core/moe's key table, validated by MoEConfig::validate with the error placed at the key), the
// MoEConfig built from a resolved config, and the routing statistics of all MoE layers of a model
// turned into LayerRouting records for the Trainer (labels x experts counts from each layer's
// RoutingMonitor).
//
//   void declare_config(Schema& s) const override { declare_moe_config(s); ... }
//   moe::MoEConfig mc = moe_config_from(cfg);
//   ...
//   begin_routing_window(*model);                      // before the forward(s)
//   set_moe_labels(*model, labels);                    // (B) or (T) i64 labels for the monitor
//   ... forward ...
//   result.routing = end_routing_window(*model, num_labels);
#include <string>
#include <vector>

#include "core/moe/moe_config.h"
#include "core/nn/module.h"
#include "experiments/lib/task.h"

namespace moelab::experiments {

// Adds "<prefix>.<key>" for every key of moe::moe_config_keys() and a check that runs
// MoEConfig::validate() (top_k <= num_experts, ...), reporting at the offending key.
void declare_moe_config(Schema& schema, const std::string& prefix = "model.moe");
moe::MoEConfig moe_config_from(const Config& cfg, const std::string& prefix = "model.moe");

// Resets the statistics accumulators and routing monitors of every MoE layer below `model`.
void begin_routing_window(nn::Module& model);
// Sets the routing-monitor labels of every MoE layer (an undefined tensor clears them).
void set_moe_labels(nn::Module& model, const Tensor& labels);
// Routing of every MoE layer since begin_routing_window: counts per expert, dropped fraction, router
// entropy and confidence, bias range, and the labels x experts matrix padded to `num_labels` rows
// (labels >= num_labels are dropped). The layer index is the first number in the layer's path
// ("blocks.3.ffn" -> 3; a model with one unnumbered MoE layer gets 0).
std::vector<LayerRouting> end_routing_window(nn::Module& model, int64_t num_labels);

// Model state a checkpoint needs beyond the parameters: every buffer (router selection biases, ...)
// as "buffers.<name>", and per MoE layer its routing-noise stream and step counter (temperature
// annealing) as "<path>.noise_rng" / "<path>.step".
void save_model_state(nn::Module& model, TaskState& state);
void load_model_state(nn::Module& model, const TaskState& state);

// Concurrent micro-batches (train.workers): before a replica (nn::Module::share_state_with) trains
// micro-batch `micro` of optimizer step `step`, it takes the master's mode and MoE step counters, and
// routing-noise and dropout streams forked from the master's by (step, micro), so the draws do not
// depend on which worker runs the micro-batch. After the step's backwards, merge_replica_counts hands
// each replica's pending MoE selection counts to the master, which makes the bias update.
void prepare_replica(nn::Module& replica, nn::Module& master, int64_t step, int micro);
void merge_replica_counts(nn::Module& master, nn::Module& replica);

// Restores every MoE layer's routing-noise stream when it goes out of scope, so that an evaluation
// with noisy or random routers does not change the draws training sees next.
class RoutingNoiseGuard {
 public:
  explicit RoutingNoiseGuard(nn::Module& model);
  ~RoutingNoiseGuard();
  RoutingNoiseGuard(const RoutingNoiseGuard&) = delete;
  RoutingNoiseGuard& operator=(const RoutingNoiseGuard&) = delete;

 private:
  std::vector<std::pair<RngStream*, RngStream>> saved_;
};

}  // namespace moelab::experiments
