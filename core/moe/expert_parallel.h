#pragma once
// Expert parallelism for one MoE layer (docs/distributed.md): experts shared over consecutive ranks, tokens
// sent to their experts' ranks and back by all-to-all. Every rank keeps all expert tensors but computes (and
// gets gradients for) its own experts only; the data-parallel all-reduce sums the rest.
#include <cstdint>
#include <vector>

#include "core/dist/communicator.h"
#include "core/moe/dispatch.h"

namespace moelab::moe {

// How one MoE layer uses the job's ranks. comm == nullptr: a single process.
struct LayerParallelism {
  dist::Communicator* comm = nullptr;
  int expert_first_rank = 0;  // the expert-parallel group: ranks [expert_first_rank, + expert_ranks)
  int expert_ranks = 1;       // 1: every rank runs all experts on its own tokens
  bool expert_parallel() const { return comm && expert_ranks > 1; }
};

// Experts [first, first + count) of group member `member` when E experts are shared by `ranks` ranks.
int64_t local_expert_first(int64_t num_experts, int ranks, int member);

// The expert-parallel form of moe_dispatch_combine: the same result (up to f32 summation order) for this
// rank's tokens. x: (T, d), slot_weight: (S), plan: this rank's plan over all E experts (capacity applied
// locally, as a single process applies it to the same tokens) -> (T, d). Per call: an exchange of per-expert
// row counts, an all-to-all of the kept rows to their experts' ranks, the grouped FFN of the local experts,
// the reverse all-to-all; backward runs the reverses. Every rank of p.comm must call it together.
Tensor expert_parallel_dispatch_combine(const LayerParallelism& p, const Tensor& x, const Tensor& slot_weight,
                                        const DispatchPlan& plan, const ExpertWeights& experts);

// Bytes of token rows this process sent to other ranks in expert-parallel all-to-alls since the last reset
// (forward dispatch and combine, and the same again for the backward of a forward that records gradients).
int64_t expert_parallel_bytes_sent();
void reset_expert_parallel_bytes();

}  // namespace moelab::moe
