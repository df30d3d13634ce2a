// VectorEnv::save_state / load_state: the environments are plain values (games, MT19937 stream, last
// action), so their bytes are the state; a header guards against another layout, game or env count.
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "rl/envs/vector_env.h"

namespace moelab::rl {

static_assert(std::is_trivially_copyable_v<Environment>, "VectorEnv::save_state copies environments as bytes");

namespace {
struct StateHeader {
  uint32_t magic = 0x56454e31;  // "VEN1"
  uint32_t env_bytes = sizeof(Environment);
  int32_t game = 0, num_envs = 0, observation_size = 0, reserved = 0;
};
template <class T> void put(std::vector<uint8_t>& out, const T* data, size_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + n * sizeof(T));
}
template <class T> void take(std::span<const uint8_t>& in, T* data, size_t n) {
  std::memcpy(data, in.data(), n * sizeof(T));
  in = in.subspan(n * sizeof(T));
}
}  // namespace

std::vector<uint8_t> VectorEnv::save_state() const {
  StateHeader h;
  h.game = static_cast<int32_t>(config_.game);
  h.num_envs = num_envs();
  h.observation_size = observation_size();
  std::vector<uint8_t> out;
  put(out, &h, 1);
  put(out, envs_.data(), envs_.size());
  put(out, running_returns_.data(), running_returns_.size());
  put(out, running_lengths_.data(), running_lengths_.size());
  put(out, obs_, static_cast<size_t>(num_envs()) * observation_size());
  return out;
}

void VectorEnv::load_state(std::span<const uint8_t> in) {
  StateHeader h, want;
  want.game = static_cast<int32_t>(config_.game);
  want.num_envs = num_envs();
  want.observation_size = observation_size();
  const size_t n = envs_.size(), expected = sizeof(StateHeader) + n * sizeof(Environment) + n * sizeof(float) +
                                          n * sizeof(int32_t) + n * static_cast<size_t>(observation_size());
  if (in.size() < sizeof(StateHeader)) throw std::invalid_argument("VectorEnv::load_state: the state is truncated");
  take(in, &h, 1);
  if (h.magic != want.magic || h.env_bytes != want.env_bytes)
    throw std::invalid_argument("VectorEnv::load_state: the state was written by a build with another environment layout");
  if (h.game != want.game || h.num_envs != want.num_envs || h.observation_size != want.observation_size)
    throw std::invalid_argument("VectorEnv::load_state: the state holds " + std::to_string(h.num_envs) + " envs of game " +
                                std::to_string(h.game) + ", this VectorEnv has " + std::to_string(want.num_envs) +
                                " of game " + std::to_string(want.game));
  if (in.size() + sizeof(StateHeader) != expected)
    throw std::invalid_argument("VectorEnv::load_state: the state has " + std::to_string(in.size() + sizeof(StateHeader)) +
                                " bytes, expected " + std::to_string(expected));
  take(in, envs_.data(), n);
  take(in, running_returns_.data(), n);
  take(in, running_lengths_.data(), n);
  take(in, obs_, n * static_cast<size_t>(observation_size()));
}

}  // namespace moelab::rl
