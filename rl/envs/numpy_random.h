#pragma once
// numpy's legacy RandomState, reproduced draw for draw (specs/minatar.md §1): one MT19937 stream,
// `rand()` from two 32-bit words, legacy masked-rejection `randint`. MinAtar's wrapper and game share it.
#include <cstdint>
#include <random>

namespace moelab::rl {

class NumpyRandom {
 public:
  // RandomState(seed) == MT19937 init_genrand(seed) == std::mt19937(seed).
  explicit NumpyRandom(uint32_t seed = 5489u) : mt_(seed) {}
  void seed(uint32_t seed) { mt_.seed(seed); }

  uint32_t next_uint32() { return static_cast<uint32_t>(mt_()); }

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
  std::mt19937 mt_;
};

}  // namespace moelab::rl
