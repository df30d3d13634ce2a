#pragma once
// Uniform experience replay for DQN: a ring of u8 frames per env, a transition is a slot and the
// slot after it, a truncated episode's last frame takes one extra slot. Layout and usage: docs/rl.md.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"
#include "core/util/rng.h"

namespace moelab::rl {

class VectorEnv;

// Named tensors as checkpoints hold them (the same type as nn::NamedTensors).
using TensorList = std::vector<std::pair<std::string, Tensor>>;

struct ReplayConfig {
  int64_t capacity = 100000;      // transitions held, all streams together (a multiple of num_streams)
  int observation_size = 0;       // bytes per frame, 10 * 10 * C
  int num_streams = 1;            // envs pushing in lockstep; each gets capacity / num_streams transitions
  uint64_t seed = 0;              // sampling draws come from RngStream(seed, "replay")
  bool distinct_in_batch = true;  // no transition twice in one batch (dqn.py samples with random.sample)
};

// One sampled batch, row-major on the host.
struct ReplayBatch {
  int size = 0;
  int observation_size = 0;
  std::vector<uint8_t> observations;       // (B, obs) s_t
  std::vector<uint8_t> next_observations;  // (B, obs) s_{t+1}; for a truncated step its true last observation;
                                           // for a terminated step the next episode's first (masked out)
  std::vector<int32_t> actions;            // (B)
  std::vector<float> rewards;              // (B)
  std::vector<uint8_t> terminated;         // (B) the game ended: no bootstrap
  std::vector<uint8_t> truncated;          // (B) the time limit ended it: bootstrap from next_observations
  std::vector<int64_t> slots;              // (B) where each transition lives (for tests and diagnostics)
};

// A batch as tensors on `device`: observations and next_observations f32 (B, C, 10, 10) (the conv2d
// layout), actions i64 (B), rewards and terminated f32 (B).
struct ReplayTensors {
  Tensor observations, next_observations, actions, rewards, terminated;
};
ReplayTensors to_tensors(const ReplayBatch& batch, int channels, Device device = Device::cpu());

class ReplayBuffer {
 public:
  explicit ReplayBuffer(const ReplayConfig& config);

  // observations: (S, obs), each stream's first observation after reset. Call once before the first push.
  void begin(const uint8_t* observations);
  // One env step of every stream: actions (S) taken in the current frames, rewards (S), terminated and
  // truncated flags (S), next_observations (S, obs) (the new episode's first where one ended) and
  // final_observations (S, obs), read only where truncated (may be null when none is).
  void push(const int32_t* actions, const float* rewards, const uint8_t* terminated, const uint8_t* truncated,
            const uint8_t* next_observations, const uint8_t* final_observations);
  // The same, read from a VectorEnv right after venv.step(actions).
  void push(const VectorEnv& venv, std::span<const int> actions);

  // Uniform over the stored transitions (without repeats when distinct_in_batch); throws when fewer
  // than batch_size (distinct) or none are stored. Consumes draws of the "replay" stream only.
  void sample(int batch_size, ReplayBatch& out);

  int64_t num_transitions() const { return num_transitions_; }  // sampleable now
  int64_t frames_pushed() const { return frames_pushed_; }      // steps pushed, all streams together
  const ReplayConfig& config() const { return config_; }
  const RngStream& rng() const { return rng_; }

  // The full state (frames, per-slot data, ring positions, RNG) as tensors named prefix + "frames", ...;
  // load_state restores it into a buffer built with the same config and says which tensor is wrong.
  TensorList state(const std::string& prefix = "replay.") const;
  void load_state(const TensorList& tensors, const std::string& prefix = "replay.");

 private:
  enum SlotFlags : uint8_t { kTerminated = 1, kTruncated = 2, kStartsTransition = 4 };
  int64_t slot(int stream, int64_t pos) const { return stream * ring_ + pos; }
  uint8_t* frame(int64_t s) { return frames_.data() + s * config_.observation_size; }
  const uint8_t* frame(int64_t s) const { return frames_.data() + s * config_.observation_size; }
  // Moves stream's current position one slot on, clearing what it overwrites; returns the new slot.
  int64_t advance(int stream);

  ReplayConfig config_;
  int64_t ring_ = 0;  // slots per stream: capacity / num_streams transitions + the current frame
  std::vector<uint8_t> frames_;
  std::vector<int32_t> actions_;
  std::vector<float> rewards_;
  std::vector<uint8_t> flags_;
  std::vector<int64_t> position_;  // (S) the slot of each stream's current frame (no action taken yet)
  std::vector<int64_t> filled_;    // (S) slots written so far, at most ring_
  int64_t num_transitions_ = 0, frames_pushed_ = 0;
  bool begun_ = false;
  RngStream rng_;
  std::vector<int64_t> picked_;  // scratch for distinct sampling
};

}  // namespace moelab::rl
