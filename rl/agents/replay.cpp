#include "rl/agents/replay.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "rl/agents/multi_game.h"
#include "rl/envs/vector_env.h"

namespace moelab::rl {

namespace {
constexpr int64_t kStateVersion = 1;

// The tensor `prefix + name` of `tensors`, checked for dtype and shape; throws naming it otherwise.
const Tensor& expect_tensor(const TensorList& tensors, const std::string& prefix, const std::string& name,
                            DType dtype, const Shape& shape) {
  const std::string full = prefix + name;
  for (const auto& [key, tensor] : tensors) {
    if (key != full) continue;
    if (tensor.dtype() != dtype)
      throw std::invalid_argument("replay state: tensor '" + full + "' is " + std::string(dtype_name(tensor.dtype())) +
                                  ", expected " + std::string(dtype_name(dtype)));
    if (tensor.shape() != shape)
      throw std::invalid_argument("replay state: tensor '" + full + "' has shape " + tensor.shape().str() +
                                  ", expected " + shape.str());
    if (!tensor.is_contiguous() || tensor.device() != Device::cpu())
      throw std::invalid_argument("replay state: tensor '" + full + "' must be a contiguous host tensor");
    return tensor;
  }
  throw std::invalid_argument("replay state: tensor '" + full + "' is missing");
}

int words_per_frame(int observation_size) { return (observation_size + 3) / 4; }
}  // namespace

ReplayTensors to_tensors(const ReplayBatch& batch, int channels, Device device) {
  const int B = batch.size;
  if (channels < 1 || batch.observation_size != obs_size(channels))
    throw std::invalid_argument("replay to_tensors: frames of " + std::to_string(batch.observation_size) +
                                " bytes are not (10, 10, " + std::to_string(channels) + ")");
  std::vector<int64_t> actions(batch.actions.begin(), batch.actions.end());
  std::vector<float> terminated(batch.terminated.begin(), batch.terminated.end());
  return {observations_to_tensor(batch.observations.data(), B, channels, TensorLayout::nchw, 1.0f, device),
          observations_to_tensor(batch.next_observations.data(), B, channels, TensorLayout::nchw, 1.0f, device),
          Tensor::from_vector<int64_t>(actions, Shape{B}, device),
          Tensor::from_vector<float>(batch.rewards, Shape{B}, device),
          Tensor::from_vector<float>(terminated, Shape{B}, device)};
}

ReplayBuffer::ReplayBuffer(const ReplayConfig& config) : config_(config), rng_(config.seed, "replay") {
  const int S = config.num_streams;
  if (S < 1) throw std::invalid_argument("ReplayBuffer: num_streams must be >= 1, got " + std::to_string(S));
  if (config.observation_size < 1)
    throw std::invalid_argument("ReplayBuffer: observation_size must be >= 1 byte, got " +
                                std::to_string(config.observation_size));
  if (config.capacity % S != 0 || config.capacity / S < 2)
    throw std::invalid_argument("ReplayBuffer: capacity " + std::to_string(config.capacity) +
                                " must be a multiple of num_streams " + std::to_string(S) +
                                " with at least 2 transitions per stream");
  ring_ = config.capacity / S + 1;
  const int64_t slots = ring_ * S;
  frames_.assign(static_cast<size_t>(slots) * config.observation_size, 0);
  actions_.assign(slots, 0);
  rewards_.assign(slots, 0.f);
  flags_.assign(slots, 0);
  position_.assign(S, 0);
  filled_.assign(S, 0);
}

int64_t ReplayBuffer::advance(int stream) {
  const int64_t p = (position_[stream] + 1) % ring_;
  const int64_t s = slot(stream, p);
  if (flags_[s] & kStartsTransition) --num_transitions_;  // the oldest transition of this stream leaves
  flags_[s] = 0;
  position_[stream] = p;
  filled_[stream] = std::max(filled_[stream], p + 1);
  return s;
}

void ReplayBuffer::begin(const uint8_t* observations) {
  for (int i = 0; i < config_.num_streams; ++i) {
    if (!begun_) {
      position_[i] = 0;
      filled_[i] = 1;
    }
    // A repeated begin replaces each stream's current frame (it has no transition yet).
    std::memcpy(frame(slot(i, position_[i])), observations + static_cast<size_t>(i) * config_.observation_size,
                config_.observation_size);
  }
  begun_ = true;
}

void ReplayBuffer::push(const int32_t* actions, const float* rewards, const uint8_t* terminated,
                        const uint8_t* truncated, const uint8_t* next_observations,
                        const uint8_t* final_observations) {
  if (!begun_) throw std::logic_error("ReplayBuffer::push before begin(first observations)");
  const size_t size = config_.observation_size;
  for (int i = 0; i < config_.num_streams && !final_observations; ++i)
    if (!terminated[i] && truncated[i])
      throw std::invalid_argument("ReplayBuffer::push: stream " + std::to_string(i) +
                                  " was truncated but no final observations were given");
  for (int i = 0; i < config_.num_streams; ++i) {
    const int64_t current = slot(i, position_[i]);
    const bool ended_by_game = terminated[i] != 0;
    const bool cut_by_limit = !ended_by_game && truncated[i] != 0;
    actions_[current] = actions[i];
    rewards_[current] = rewards[i];
    flags_[current] = kStartsTransition | (ended_by_game ? kTerminated : 0) | (cut_by_limit ? kTruncated : 0);
    ++num_transitions_;
    if (cut_by_limit) std::memcpy(frame(advance(i)), final_observations + i * size, size);
    std::memcpy(frame(advance(i)), next_observations + i * size, size);
  }
  frames_pushed_ += config_.num_streams;
}

void ReplayBuffer::push(const VectorEnv& venv, std::span<const int> actions) {
  static_assert(sizeof(int) == sizeof(int32_t));
  if (venv.num_envs() != config_.num_streams || venv.observation_size() != config_.observation_size)
    throw std::invalid_argument("ReplayBuffer::push: VectorEnv has " + std::to_string(venv.num_envs()) + " envs of " +
                                std::to_string(venv.observation_size()) + " bytes, buffer expects " +
                                std::to_string(config_.num_streams) + " of " +
                                std::to_string(config_.observation_size));
  if (static_cast<int>(actions.size()) != config_.num_streams)
    throw std::invalid_argument("ReplayBuffer::push: " + std::to_string(actions.size()) + " actions for " +
                                std::to_string(config_.num_streams) + " streams");
  push(reinterpret_cast<const int32_t*>(actions.data()), venv.rewards(), venv.terminated(), venv.truncated(),
       venv.observations(), venv.final_observations());
}

void ReplayBuffer::sample(int batch_size, ReplayBatch& out) {
  if (batch_size < 1) throw std::invalid_argument("ReplayBuffer::sample: batch_size must be >= 1");
  if (num_transitions_ == 0 || (config_.distinct_in_batch && num_transitions_ < batch_size))
    throw std::logic_error("ReplayBuffer::sample: " + std::to_string(num_transitions_) +
                           " transitions stored, cannot draw a batch of " + std::to_string(batch_size) +
                           (config_.distinct_in_batch ? " distinct ones" : ""));
  const int S = config_.num_streams;
  const size_t size = config_.observation_size;
  int64_t total = 0;
  bool equal_fill = true;
  for (int i = 0; i < S; ++i) {
    total += filled_[i];
    equal_fill = equal_fill && filled_[i] == filled_[0];
  }
  out.size = batch_size;
  out.observation_size = config_.observation_size;
  out.observations.resize(batch_size * size);
  out.next_observations.resize(batch_size * size);
  out.actions.resize(batch_size);
  out.rewards.resize(batch_size);
  out.terminated.resize(batch_size);
  out.truncated.resize(batch_size);
  out.slots.resize(batch_size);
  picked_.clear();
  for (int b = 0; b < batch_size; ++b) {
    // Uniform over written slots, rejecting those that start no transition (current frames, final frames)
    // and, when asked, those already in the batch: uniform over the stored transitions.
    int64_t chosen = -1;
    int stream = 0;
    int64_t pos = 0;
    while (chosen < 0) {
      int64_t u = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(total)));
      if (equal_fill) {
        stream = static_cast<int>(u / filled_[0]);
        pos = u % filled_[0];
      } else {
        stream = 0;
        while (u >= filled_[stream]) u -= filled_[stream++];
        pos = u;
      }
      const int64_t s = slot(stream, pos);
      if (!(flags_[s] & kStartsTransition)) continue;
      if (config_.distinct_in_batch && std::find(picked_.begin(), picked_.end(), s) != picked_.end()) continue;
      chosen = s;
    }
    if (config_.distinct_in_batch) picked_.push_back(chosen);
    const int64_t next = slot(stream, (pos + 1) % ring_);
    std::memcpy(out.observations.data() + b * size, frame(chosen), size);
    std::memcpy(out.next_observations.data() + b * size, frame(next), size);
    out.actions[b] = actions_[chosen];
    out.rewards[b] = rewards_[chosen];
    out.terminated[b] = (flags_[chosen] & kTerminated) ? 1 : 0;
    out.truncated[b] = (flags_[chosen] & kTruncated) ? 1 : 0;
    out.slots[b] = chosen;
  }
}

TensorList ReplayBuffer::state(const std::string& prefix) const {
  const int S = config_.num_streams;
  int64_t rows = 0;
  for (int i = 0; i < S; ++i) rows += filled_[i];
  const int words = words_per_frame(config_.observation_size);
  // Frames are bytes; core tensors have no u8 type, so each frame's bytes are packed into i32 words
  // (zero-padded). Only the written prefix of each stream's ring is saved.
  Tensor frames = Tensor::zeros(Shape{rows, words}, DType::i32);
  Tensor actions = Tensor::empty(Shape{rows}, DType::i32);
  Tensor rewards = Tensor::empty(Shape{rows}, DType::f32);
  Tensor flags = Tensor::empty(Shape{rows}, DType::i32);
  auto* frame_bytes = reinterpret_cast<uint8_t*>(frames.data<int32_t>());
  int64_t row = 0;
  for (int i = 0; i < S; ++i) {
    for (int64_t p = 0; p < filled_[i]; ++p, ++row) {
      const int64_t s = slot(i, p);
      std::memcpy(frame_bytes + row * words * 4, frame(s), config_.observation_size);
      actions.data<int32_t>()[row] = actions_[s];
      rewards.data<float>()[row] = rewards_[s];
      flags.data<int32_t>()[row] = flags_[s];
    }
  }
  Tensor positions = Tensor::from_vector<int64_t>(position_, Shape{S});
  Tensor filled = Tensor::from_vector<int64_t>(filled_, Shape{S});
  const std::vector<int64_t> meta = {kStateVersion,
                                     config_.capacity,
                                     config_.observation_size,
                                     config_.num_streams,
                                     frames_pushed_,
                                     begun_ ? 1 : 0,
                                     static_cast<int64_t>(rng_.key()),
                                     static_cast<int64_t>(rng_.counter())};
  return {{prefix + "meta", Tensor::from_vector<int64_t>(meta, Shape{static_cast<int64_t>(meta.size())})},
          {prefix + "positions", positions},
          {prefix + "filled", filled},
          {prefix + "frames", frames},
          {prefix + "actions", actions},
          {prefix + "rewards", rewards},
          {prefix + "flags", flags}};
}

void ReplayBuffer::load_state(const TensorList& tensors, const std::string& prefix) {
  const int S = config_.num_streams;
  const int64_t* meta = expect_tensor(tensors, prefix, "meta", DType::i64, Shape{8}).data<int64_t>();
  auto mismatch = [&](const char* what, int64_t saved, int64_t here) {
    if (saved != here)
      throw std::invalid_argument("replay state: tensor '" + prefix + "meta' holds " + what + " " +
                                  std::to_string(saved) + ", this buffer has " + std::to_string(here));
  };
  mismatch("format version", meta[0], kStateVersion);
  mismatch("capacity", meta[1], config_.capacity);
  mismatch("observation_size", meta[2], config_.observation_size);
  mismatch("num_streams", meta[3], S);
  const int64_t* positions = expect_tensor(tensors, prefix, "positions", DType::i64, Shape{S}).data<int64_t>();
  const int64_t* filled = expect_tensor(tensors, prefix, "filled", DType::i64, Shape{S}).data<int64_t>();
  int64_t rows = 0;
  for (int i = 0; i < S; ++i) {
    if (filled[i] < 0 || filled[i] > ring_ || positions[i] < 0 || (filled[i] > 0 && positions[i] >= filled[i]))
      throw std::invalid_argument("replay state: stream " + std::to_string(i) + " has position " +
                                  std::to_string(positions[i]) + " and " + std::to_string(filled[i]) +
                                  " written slots, outside a ring of " + std::to_string(ring_) + " (tensors '" +
                                  prefix + "positions', '" + prefix + "filled')");
    rows += filled[i];
  }
  const int words = words_per_frame(config_.observation_size);
  const auto* frame_bytes = reinterpret_cast<const uint8_t*>(
      expect_tensor(tensors, prefix, "frames", DType::i32, Shape{rows, words}).data<int32_t>());
  const int32_t* actions = expect_tensor(tensors, prefix, "actions", DType::i32, Shape{rows}).data<int32_t>();
  const float* rewards = expect_tensor(tensors, prefix, "rewards", DType::f32, Shape{rows}).data<float>();
  const int32_t* flags = expect_tensor(tensors, prefix, "flags", DType::i32, Shape{rows}).data<int32_t>();
  for (int64_t r = 0; r < rows; ++r)
    if (flags[r] < 0 || flags[r] > (kTerminated | kTruncated | kStartsTransition))
      throw std::invalid_argument("replay state: tensor '" + prefix + "flags' row " + std::to_string(r) +
                                  " holds " + std::to_string(flags[r]) + ", not a combination of flags 1, 2, 4");

  std::fill(flags_.begin(), flags_.end(), 0);
  num_transitions_ = 0;
  int64_t row = 0;
  for (int i = 0; i < S; ++i) {
    position_[i] = positions[i];
    filled_[i] = filled[i];
    for (int64_t p = 0; p < filled[i]; ++p, ++row) {
      const int64_t s = slot(i, p);
      std::memcpy(frame(s), frame_bytes + row * words * 4, config_.observation_size);
      actions_[s] = actions[row];
      rewards_[s] = rewards[row];
      flags_[s] = static_cast<uint8_t>(flags[row]);
      if (flags_[s] & kStartsTransition) ++num_transitions_;
    }
  }
  frames_pushed_ = meta[4];
  begun_ = meta[5] != 0;
  rng_ = RngStream::from_state(static_cast<uint64_t>(meta[6]), static_cast<uint64_t>(meta[7]));
}

}  // namespace moelab::rl
