#pragma once
// Shared by the tests of core/dist: every rank's inputs generated from (seed, rank), so each rank can also
// build every other rank's data and compute a one-process reference.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dist/communicator.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab::test {

// Rank r's (rows, cols) tensor of dtype t: normal values (floats) or small integers, from (seed, r).
inline Tensor rank_data(uint64_t seed, int r, int64_t rows, int64_t cols, DType t) {
  RngStream rng(seed, "rank " + std::to_string(r));
  Tensor x = rand_normal({rows, cols}, 0.0, 1.0, rng, DType::f64);
  if (is_floating(t)) return x.to(t);
  return mul(x, 1000.0).to(t);
}

// Bitwise equality of two tensors' contents (same dtype and numel).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.numel() != b.numel()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.numel() == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), a.nbytes()) == 0;
}

// The rank-order serial sum ((x_0 + x_1) + x_2) + ... of every rank's rank_data, computed locally.
// A plain loop, element by element.
inline Tensor serial_sum(uint64_t seed, int ranks, int64_t rows, int64_t cols, DType t) {
  Tensor acc = rank_data(seed, 0, rows, cols, t).contiguous().clone();
  for (int r = 1; r < ranks; ++r) {
    Tensor x = rank_data(seed, r, rows, cols, t).contiguous();
    dispatch_dtype(t, [&]<typename T>() {
      T* a = acc.data<T>();
      const T* b = x.data<T>();
      for (int64_t i = 0; i < acc.numel(); ++i) a[i] = a[i] + b[i];
    });
  }
  return acc;
}

}  // namespace moelab::test
