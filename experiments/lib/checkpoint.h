#pragma once
// Checkpoints of a run: ckpt/step_N/{model.safetensors (the model's state dict), state.safetensors (optimizer,
// task and trainer state), DONE (written last)}, written to step_N.tmp and renamed, so a killed run leaves only
// complete checkpoints or ones resume ignores. What each file holds: docs/runner.md (The run directory).
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/nn/module.h"

namespace moelab::experiments {

struct CheckpointData {
  int64_t step = 0;  // optimizer steps completed
  nn::NamedTensors model, state;
  std::map<std::string, std::string> model_metadata, state_metadata;
};

struct CheckpointInfo {
  int64_t step = 0;
  std::filesystem::path dir;
};

std::string checkpoint_dir_name(int64_t step);  // "step_000001000"
// Complete checkpoints (with DONE), oldest first.
std::vector<CheckpointInfo> list_checkpoints(const std::filesystem::path& run_dir);
std::optional<CheckpointInfo> latest_checkpoint(const std::filesystem::path& run_dir);
// The complete checkpoint of `step`; throws moelab::Error listing the available steps when absent.
CheckpointInfo find_checkpoint(const std::filesystem::path& run_dir, int64_t step);
// The checkpoint of `step` when given, else the newest complete one (throws when there is none).
CheckpointInfo checkpoint_or_latest(const std::filesystem::path& run_dir, std::optional<int64_t> step);

// Writes <run_dir>/ckpt/step_<step> as described above and returns its directory. Tests can set the
// environment variable MOELAB_TEST_KILL_IN_CHECKPOINT=<step> to have the process SIGKILL itself in the
// middle of writing that step's checkpoint (after model.safetensors, before state and DONE). A write
// that fails (full disk) removes the partial directory and throws moelab::Error naming the file and
// the newest complete checkpoint, which is left intact.
std::filesystem::path write_checkpoint(const std::filesystem::path& run_dir, const CheckpointData& data);
// Every tensor's CRC-32C is verified (when the files have them); damage throws moelab::Error naming
// the file, the tensor, its byte range and the earlier checkpoint to resume from.
CheckpointData read_checkpoint(const CheckpointInfo& info);
// Deletes all but the newest `keep` complete checkpoints (keep = 0 keeps all) and any incomplete
// or temporary checkpoint directory.
void prune_checkpoints(const std::filesystem::path& run_dir, int64_t keep);
// Copies a checkpoint's model tensors into `model` (parameters and buffers; same names and shapes, no
// extras). Throws moelab::Error listing every mismatch, naming the checkpoint directory.
void load_model_state(nn::Module& model, const CheckpointData& data, const CheckpointInfo& info);

}  // namespace moelab::experiments
