#pragma once
// Stable device sort (CUB radix sort) used for deterministic grouping: equal keys keep their input order.
#include <cstdint>

namespace moelab::cuda {

// Sorts n (key, value) pairs by the low key_bits bits of the keys on the device's stream (asynchronous).
void sort_pairs(const uint64_t* keys_in, uint64_t* keys_out, const int64_t* values_in, int64_t* values_out,
                int64_t n, int key_bits, int device);
// Bits needed to hold every key in [0, max_key] (at least 1).
int key_bits_for(uint64_t max_key);
// out[i] = i for i < n, on the device's stream.
void iota(int64_t* out, int64_t n, int device);

}  // namespace moelab::cuda
