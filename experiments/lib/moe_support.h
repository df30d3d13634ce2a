#pragma once
// The `model.moe.*` config keys every task with MoE layers shares: the core's key table (common keys and
// every router family's), the placement keys `every` and `layers`, and the validation that places each
// problem at its key.
#include <cstdint>
#include <string>
#include <vector>

#include "core/moe/moe_config.h"
#include "experiments/lib/task.h"

namespace moelab::experiments {

// Adds "<prefix>.<key>" for every key of moe::moe_config_keys(), the placement keys "<prefix>.every"
// (default `default_every`) and "<prefix>.layers", and a check that reports MoEConfig::validate() at each key.
void declare_moe_config(Schema& schema, int64_t default_every, const std::string& prefix = "model.moe");
moe::MoEConfig moe_config_from(const Config& cfg, const std::string& prefix = "model.moe");
// The MoE block indices of a stack of `depth` blocks (moe::moe_block_indices of every/layers); the schema
// check has already placed out-of-range indices at the key.
std::vector<int64_t> moe_blocks_from(const Config& cfg, int64_t depth, const std::string& prefix = "model.moe");
// Adds a check that every index in "<prefix>.layers" is below the value of `depth_key`.
void check_moe_layers_within(Schema& schema, const std::string& depth_key, const std::string& prefix = "model.moe");

}  // namespace moelab::experiments
