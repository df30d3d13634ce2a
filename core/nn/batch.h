#pragma once
// A batch that names its parts: the one thing a task's data stream hands to a model's forward. Every field
// is optional; a model reads the inputs it needs and MoE layers read the routing side inputs.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/tensor/tensor.h"

namespace moelab::moe {
struct RoutingRecord;
}

namespace moelab::nn {

// Routing decisions to replay, keyed by the MoE layer's module path ("blocks.3.moe").
using RoutingReplay = std::map<std::string, std::shared_ptr<const moe::RoutingRecord>>;

// B examples; T tokens per example where the batch has sequences.
struct Batch {
  // ---- inputs ----
  Tensor images;        // (B, C, H, W) float
  Tensor tokens;        // (B, T) i64 token ids
  Tensor padding_mask;  // (B, T) i64 or i32: 1 = real token, 0 = padding (padded keys are masked in attention)
  Tensor features;      // (B, ...) float: any other input (regression inputs, observations)
  // ---- what the loss compares against ----
  Tensor targets;       // class ids, next tokens, regression targets, ...
  // ---- routing side inputs (read by MoE layers from the forward context) ----
  Tensor labels;        // (B) or (B, T) i64 >= 0: routing-monitor labels (class, domain, game, ...)
  Tensor groups;        // (B) or (B, T) i64 in [0, num_groups): LIMoE entropy groups (modality)
  int64_t num_groups = 0;
  Tensor token_ids;     // (B, T) i64: hash-routing keys (default: the position in the sequence)
  std::shared_ptr<const RoutingReplay> replay;  // replay these decisions (expert choice held fixed)

  // B: the leading size of the first defined input or target (0 for an empty batch).
  int64_t size() const;
  // The float and id inputs and targets moved to `device`; the routing side inputs stay on the host.
  Batch to(Device device) const;
};

}  // namespace moelab::nn
