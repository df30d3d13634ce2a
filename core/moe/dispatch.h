#pragma once
// The fast path of docs/moe.md §3 as two differentiable ops on the Backend's moe_* kernels:
// moe_dispatch_combine (gather, per-expert FFN, ordered combine) and grouped_expert_ffn (FFN alone).
// Assignments are token-major slots: token t owns [token_offsets[t], token_offsets[t+1]).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend/backend.h"
#include "core/tensor/tensor.h"

namespace moelab::moe {

// A routing plan: which slot goes to which expert row. Built once per forward, shared by the backward.
struct DispatchPlan {
  int64_t num_tokens = 0, num_slots = 0, num_experts = 0, num_rows = 0;
  Tensor token_offsets;   // (T+1) i64
  Tensor slot_expert;     // (S) i64, -1 = unassigned
  Tensor expert_counts;   // (E) i64 assignments before capacity drops
  Tensor expert_offsets;  // (E+1) i64 kept rows per expert
  Tensor row_slot;        // (S) i64 slot of each row (first num_rows valid)
  Tensor slot_row;        // (S) i64 row of each slot, -1 when dropped or unassigned
  int64_t dropped = 0;    // assigned slots dropped by capacity

  std::vector<int64_t> counts() const { return expert_counts.to_vector<int64_t>(); }
  std::vector<int64_t> kept_counts() const;
};

// slot_expert: (S) expert ids (-1 none); token_offsets: (T+1). capacity < 0: dropless. slot_priority
// (S, float, may be undefined): with a capacity, keep each expert's highest-priority slots instead of the
// first ones. The plan's tensors live on `device`.
std::shared_ptr<DispatchPlan> make_dispatch_plan(const std::vector<int64_t>& slot_expert,
                                                 const std::vector<int64_t>& token_offsets, int64_t num_experts,
                                                 int64_t capacity, const Tensor& slot_priority = Tensor(),
                                                 Device device = Device::cpu());

// Token-major offsets for `tokens` tokens with k slots each: 0, k, 2k, ...
std::vector<int64_t> uniform_token_offsets(int64_t tokens, int64_t k);

// x: (T, d), slot_weight: (S) combine weights, experts: stacked weights (w1 (E, d, f), ...)
// -> out: (T, d) = sum over each token's kept slots of weight * FFN_expert(x_t). Differentiable in x,
// slot_weight and every defined expert tensor.
Tensor moe_dispatch_combine(const Tensor& x, const Tensor& slot_weight, const std::shared_ptr<DispatchPlan>& plan,
                            const ExpertWeights& experts);

// x_rows: (R, d) grouped by expert, expert e owning rows [offsets[e], offsets[e+1]) -> (R, d).
Tensor grouped_expert_ffn(const Tensor& x_rows, const std::vector<int64_t>& expert_offsets,
                          const ExpertWeights& experts);

// Wall time spent inside the grouped expert FFN kernels (forward and backward) since the last reset, when
// enabled; benchmarks use it to split a layer's time into expert compute and routing/dispatch/combine.
void set_expert_timing(bool on);
double expert_time_seconds();
void reset_expert_time();

}  // namespace moelab::moe
