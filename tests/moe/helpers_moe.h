#pragma once
// Shared helpers of the MoE tests: random tensors, naive per-token reference forwards (the pseudo-code
// style reference of docs/moe.md §6) and small comparisons.
#include <cstdint>
#include <string>
#include <vector>

#include "core/moe/moe_layer.h"
#include "core/nn/context.h"
#include "core/tensor/tensor.h"

namespace moelab::test {

// Deterministic N(0, std) tensor.
Tensor randn(const Shape& shape, uint64_t seed, double std = 1.0, DType dtype = DType::f32);

// The naive reference for the discrete routers: for each token, for each kept slot of `rec`,
// weight * expert(x_t) one token at a time, plus shared experts. The combine weights come from the layer's
// router replaying `rec` (so both paths share the router and differ in dispatch, experts and combine).
// x2: (T, d) -> (T, d).
Tensor naive_moe_forward(moe::MoELayer& layer, const Tensor& x2, const moe::RoutingRecord& rec, int64_t seq_len,
                         const std::vector<int64_t>& token_ids = {}, int64_t step = 0);

// The naive Soft MoE: explicit per-slot and per-token sums. x: (B, N, d) -> (B, N, d).
Tensor naive_soft_moe_forward(moe::MoELayer& layer, const Tensor& x);

// One forward of `module` with a context for `batch` at `step`, keeping every layer's routing record.
struct LayerRun {
  Tensor y;
  std::vector<nn::AuxLoss> aux;
  Tensor aux_total;  // undefined without terms
  moe::RoutingLog log{true};
  const moe::RoutingRecord& record(const nn::Module& layer) const;
  const moe::RoutingTally& tally(const nn::Module& layer) const;
};
LayerRun run_layer(nn::Module& module, const Tensor& x, const nn::Batch& batch = {}, int64_t step = 0,
                   uint64_t draw_key = 0);

// Largest |a - b| / max(1, |b|) over two same-shaped tensors (as float64).
double max_rel_diff(const Tensor& a, const Tensor& b);
// Gradients of every parameter of `m` (undefined grads as zeros), in named_parameters order.
std::vector<Tensor> param_grads(const nn::Module& m);

}  // namespace moelab::test
