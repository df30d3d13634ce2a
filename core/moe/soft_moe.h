#pragma once
// Soft MoE (Puigcerver et al. 2023; specs/moe.md §4): every slot is a softmax-weighted mix of the
// tokens of one sequence, every expert processes its S slots, and every token's output is a softmax-
// weighted mix of all slot outputs. Fully differentiable; nothing is dropped.
#include "core/moe/experts.h"
#include "core/moe/router.h"

namespace moelab::moe {

struct SoftMoEOutput {
  Tensor y;            // (B, N, d)
  Tensor expert_mass;  // (B*N, E) detached: each token's combine weight summed over an expert's slots
};

// x: (B, N, d); router.weight (E*S, d) holds the slot parameters; experts: E experts.
SoftMoEOutput soft_moe_forward(const Tensor& x, const Router& router, const Experts& experts);

}  // namespace moelab::moe
