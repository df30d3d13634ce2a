#pragma once
// The MoE layer (docs/moe.md): a Module that replaces a transformer block's FFN. Children: router.* (router.h),
// experts.w1/b1/w2/b2/w3 (experts.h), shared_experts.* and shared_expert_gate.weight when configured.
// Side inputs (routing labels, LIMoE groups, hash keys, replay) come from the forward context's batch.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/moe/dispatch.h"
#include "core/moe/experts.h"
#include "core/moe/expert_parallel.h"
#include "core/moe/moe_config.h"
#include "core/moe/router.h"
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

class MoELayer : public nn::Module {
 public:
  MoELayer(const MoEConfig& cfg, const MoELayerOptions& options, RngStream& rng);

  // x: (..., d) with sequences along dim -2 when x has 3+ dims ((B, N, d)); (T, d) is one sequence.
  // Adds one aux loss per active balancing term (named like its key: switch_loss, z_loss, ...) and tallies
  // its routing into ctx.routing under this layer's path.
  Tensor forward(const Tensor& x, nn::ForwardContext& ctx) override;
  using nn::Module::forward;  // forward(x): an empty context (no side inputs; aux losses and routing dropped)
  // The aux-loss-free bias update from the step's choice counts of this layer (end.routing).
  void after_optimizer_step(const nn::StepEnd& end) override;

  int64_t expert_d_ff() const { return experts->d_ff; }

  MoEConfig cfg;
  MoELayerOptions options;
  std::shared_ptr<Router> router;
  std::shared_ptr<Experts> experts, shared_experts;
  std::shared_ptr<nn::Linear> shared_gate;
  // Several ranks (set by the trainer): the expert-parallel group and the communicator over which
  // switch_loss_scope = "global" sums the expert counts. Default: one process.
  LayerParallelism parallel;

 private:
  Tensor shared_forward(const Tensor& x2);
  void balancing_terms(const Routing& r, int64_t B, int64_t N, const std::vector<double>& counts, const Tensor& x,
                       nn::ForwardContext& ctx);
  void entropy_terms(const Tensor& probs, int64_t T, int64_t B, nn::ForwardContext& ctx);
};

// The MoE layers below `root` with their paths, in module order.
std::vector<std::pair<std::string, MoELayer*>> find_moe_layers(nn::Module& root);

// Which blocks of a depth-`depth` stack get an MoE FFN: an explicit list when non-empty (checked against
// depth), else every `every`-th block counting from the end of each group (every = 2 of depth 6 -> 1, 3, 5,
// as in V-MoE); every = 0 with an empty list -> none.
std::vector<int64_t> moe_block_indices(int64_t depth, int64_t every, const std::vector<int64_t>& layers);

}  // namespace moelab::moe
