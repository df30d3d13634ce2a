#pragma once
// A stack of E FFN experts in stacked weights, the layout the grouped GEMM wants: w1 (E, d, f) is (in, out),
// the transpose of an nn::Linear(d, f) weight. Shapes and the expert formula: docs/moe.md (Parameters).
#include <cstdint>

#include "core/backend/backend.h"
#include "core/nn/init.h"
#include "core/nn/module.h"

namespace moelab::moe {

class Experts : public nn::Module {
 public:
  // Initialized like nn::Linear layers of the same fan-in (per the init scheme).
  Experts(int64_t num_experts, int64_t d_model, int64_t d_ff, ExpertActivation act, bool bias,
          const nn::InitOptions& init, RngStream& rng, DType dtype = DType::f32);
  ExpertWeights weights() const;
  // x: (T, d) through expert e densely (reference path and tests) -> (T, d).
  Tensor forward_expert(int64_t e, const Tensor& x) const;

  int64_t num_experts, d_model, d_ff;
  ExpertActivation act;
  Tensor w1, b1, w2, b2, w3;
};

}  // namespace moelab::moe
