#pragma once
// The MoE layer (specs/moe.md): a Module that replaces a transformer block's FFN. Children and parameter
// names (under the block's FFN name, e.g. `blocks.3.moe.`):
//   router.*            the router (router.h): weight, proj, logit_scale, noise_weight, bias (buffer)
//   experts.w1/b1/w2/b2/w3        stacked routed experts (experts.h)
//   shared_experts.w1/...         always-on shared experts (when moe.shared_experts > 0)
//   shared_expert_gate.weight     (1, d) sigmoid gate of the shared output (when moe.shared_expert_gate)
//
//   auto moe = std::make_shared<MoELayer>(cfg, MoELayerOptions{.d_model = 64, .d_ff = 256}, rng);
//   block->set_ffn(moe);                         // the block calls forward_aux
//   moe->set_context({.labels = class_ids});     // routing-monitor labels for the next forwards
//   nn::ForwardOutput out = moe->forward_aux(x); // out.aux_losses: one AuxLoss per active term
//
// forward_aux returns y with x's shape, one AuxLoss per active balancing term (named like its config
// key: switch_loss, importance_loss, load_loss, z_loss, local_entropy_loss, global_entropy_loss; weight =
// the coefficient) and detached statistics (load, load_cv, dropped_fraction, ...; see MoEStats).
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/moe/dispatch.h"
#include "core/moe/experts.h"
#include "core/moe/moe_config.h"
#include "core/moe/router.h"
#include "core/moe/stats.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"

namespace moelab::moe {

struct MoELayerOptions {
  int64_t d_model = 0;
  int64_t d_ff = 0;     // the dense FFN's width: the expert width when moe.expert_d_ff = 0
  int64_t seq_len = 0;  // tokens per sequence (soft_moe's default slot count; hash positions)
  nn::InitOptions init{};
  DType dtype = DType::f32;
};

// Caller-supplied inputs of the following forwards (set_context); every field is optional.
struct MoEForwardContext {
  Tensor labels{};    // (T) or (B) i64 >= 0: routing-monitor labels per token or per sequence
  Tensor groups{};    // (T) or (B) i64 in [0, num_groups): LIMoE entropy groups (modality)
  int64_t num_groups = 0;
  Tensor token_ids{}; // (T) i64: hash-routing keys (default: the position in the sequence)
  std::shared_ptr<const RoutingRecord> replay{};  // replay this routing (expert choice held fixed)
};

class MoELayer : public nn::Module {
 public:
  MoELayer(const MoEConfig& cfg, const MoELayerOptions& options, RngStream& rng);

  // x: (..., d) with sequences along dim -2 when x has 3+ dims ((B, N, d)); (T, d) is one sequence.
  nn::ForwardOutput forward_aux(const Tensor& x) override;
  Tensor forward(const Tensor& x) override { return forward_aux(x).y; }
  // The aux-loss-free bias update from the counts of every training forward since the last step, and
  // the temperature-annealing step counter.
  void after_optimizer_step() override;

  void set_context(MoEForwardContext ctx) { ctx_ = std::move(ctx); }
  void clear_context() { ctx_ = MoEForwardContext(); }
  const MoEForwardContext& context() const { return ctx_; }
  // Sums per-expert counts (and, last, the token count) across data-parallel ranks: used by the global
  // Switch-loss scope and the bias update. Default: this process only.
  void set_count_reducer(std::function<void(std::vector<double>&)> reducer) { reducer_ = std::move(reducer); }

  const MoEStats& last_stats() const { return last_stats_; }
  // The last forward's routing (all routers but soft_moe); replay it through set_context.
  const RoutingRecord& last_record() const { return last_record_; }
  RoutingMonitor& monitor() { return monitor_; }
  MoEStatsAccumulator& stats_accumulator() { return accumulator_; }
  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }
  int64_t expert_d_ff() const { return experts->d_ff; }
  int64_t slots_per_expert() const { return router->slots_per_expert; }
  // Selection counts of the training forwards since the last optimizer step.
  const std::vector<double>& pending_counts() const { return step_counts_; }
  // Adds a replica's pending selection counts to this layer's and clears the replica's (concurrent
  // micro-batches: replicas run the forwards, this layer makes the bias update).
  void take_pending_counts(MoELayer& replica);

  MoEConfig cfg;
  MoELayerOptions options;
  std::shared_ptr<Router> router;
  std::shared_ptr<Experts> experts, shared_experts;
  std::shared_ptr<nn::Linear> shared_gate;

 private:
  Tensor shared_forward(const Tensor& x2);
  std::vector<int64_t> per_token(const Tensor& v, int64_t T, int64_t B, const char* what) const;

  MoEForwardContext ctx_;
  std::function<void(std::vector<double>&)> reducer_;
  MoEStats last_stats_;
  RoutingRecord last_record_;
  RoutingMonitor monitor_;
  MoEStatsAccumulator accumulator_;
  std::vector<double> step_counts_;
  int64_t step_ = 0;
};

// Sets / clears the forward context of every MoE layer below `root` (labels for the routing monitor, ...).
void set_moe_context(nn::Module& root, const MoEForwardContext& ctx);
std::vector<std::pair<std::string, MoELayer*>> find_moe_layers(nn::Module& root);

}  // namespace moelab::moe
