#pragma once
// numpy's legacy RandomState, reproduced draw for draw (docs/minatar.md §1): one MT19937 stream,
// `rand()` from two 32-bit words, legacy masked-rejection `randint`. MinAtar's wrapper and game share it.
#include <cstdint>

namespace moelab::rl {

// MT19937 (Matsumoto & Nishimura 1998) with 32-bit state words, regenerated 624 at a time; the same
// numbers as std::mt19937 and numpy's legacy generator, in half the memory of std::mt19937.
class Mt19937 {
 public:
  static constexpr int kStateSize = 624;
  explicit Mt19937(uint32_t seed = 5489u) { this->seed(seed); }
  // init_genrand(seed)
  void seed(uint32_t seed) {
    state_[0] = seed;
    for (int i = 1; i < kStateSize; ++i)
      state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    index_ = kStateSize;
  }
  uint32_t operator()() {
    if (index_ >= kStateSize) twist();
    uint32_t y = state_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
  }

 private:
  void twist() {
    constexpr int kShift = 397;
    auto mix = [](uint32_t upper, uint32_t lower, uint32_t far) {
      const uint32_t y = (upper & 0x80000000u) | (lower & 0x7FFFFFFFu);
      return far ^ (y >> 1) ^ ((y & 1u) ? 0x9908B0DFu : 0u);
    };
    int i = 0;
    for (; i < kStateSize - kShift; ++i) state_[i] = mix(state_[i], state_[i + 1], state_[i + kShift]);
    for (; i < kStateSize - 1; ++i) state_[i] = mix(state_[i], state_[i + 1], state_[i + kShift - kStateSize]);
    state_[kStateSize - 1] = mix(state_[kStateSize - 1], state_[0], state_[kShift - 1]);
    index_ = 0;
  }

  int index_ = kStateSize;
  uint32_t state_[kStateSize];
};

class NumpyRandom {
 public:
  // RandomState(seed) is MT19937 init_genrand(seed).
  explicit NumpyRandom(uint32_t seed = 5489u) : mt_(seed) {}
  void seed(uint32_t seed) { mt_.seed(seed); }

  uint32_t next_uint32() { return mt_(); }

  // numpy.random.RandomState.rand(): a double in [0, 1) with 53 random bits.
  double rand() {
    const uint32_t a = next_uint32() >> 5, b = next_uint32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  // numpy legacy randint(low, high) for int64 (high exclusive): mask, then reject values above range.
  int64_t randint(int64_t low, int64_t high) {
    const uint64_t range = static_cast<uint64_t>(high - low - 1);
    if (range == 0) return low;
    uint64_t mask = range;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t value;
    if (range <= 0xFFFFFFFFull) {
      // Ranges that fit 32 bits consume one 32-bit word per try.
      do value = next_uint32() & mask; while (value > range);
    } else {
      do {
        const uint64_t high_word = next_uint32();
        value = ((high_word << 32) | next_uint32()) & mask;
      } while (value > range);
    }
    return low + static_cast<int64_t>(value);
  }
  int64_t randint(int64_t high) { return randint(0, high); }

 private:
  Mt19937 mt_;
};

}  // namespace moelab::rl
