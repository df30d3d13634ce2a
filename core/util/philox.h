#pragma once
// Philox 4x32-10 (Salmon et al. 2011): counter-based, so element i of a draw depends only on
// (key, counter + i) and every backend and thread count produces the same numbers.
#include <cmath>
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab::philox {

struct U32x4 {
  uint32_t v[4];
};

MOELAB_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// One block of 4 random 32-bit words for the 128-bit counter (ctr_lo, ctr_hi) and 64-bit key.
MOELAB_HD U32x4 philox4x32_10(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(ctr_lo), c1 = static_cast<uint32_t>(ctr_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(ctr_hi), c3 = static_cast<uint32_t>(ctr_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float).
MOELAB_HD float u32_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
// Uniform in [0, 1) with 53 random bits.
MOELAB_HD double u64_to_unit_double(uint32_t a, uint32_t b) {
  uint64_t x = (static_cast<uint64_t>(a) << 32 | b) >> 11;
  return static_cast<double>(x) * (1.0 / 9007199254740992.0);
}

// Element i's uniform in [0,1): word i%4 of block i/4 (as double from two words: block i/2).
MOELAB_HD double uniform_at(uint64_t key, uint64_t i) {
  U32x4 r = philox4x32_10(i >> 1, 0, key);
  return (i & 1) ? u64_to_unit_double(r.v[2], r.v[3]) : u64_to_unit_double(r.v[0], r.v[1]);
}

// Element i's standard normal: Box-Muller on the block i/2, cos for even i, sin for odd i.
MOELAB_HD double normal_at(uint64_t key, uint64_t i) {
  U32x4 r = philox4x32_10(i >> 1, 1, key);
  double u1 = u64_to_unit_double(r.v[0], r.v[1]);
  double u2 = u64_to_unit_double(r.v[2], r.v[3]);
  double radius = std::sqrt(-2.0 * std::log(1.0 - u1));  // 1-u1 in (0,1]: log is finite
  double theta = 6.283185307179586 * u2;
  return (i & 1) ? radius * std::sin(theta) : radius * std::cos(theta);
}

}  // namespace moelab::philox
