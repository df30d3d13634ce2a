// cuda: the one CUB radix sort that the backend instantiates (u64 keys, i64 values; stable), shared by
// the deterministic scatter-adds and the MoE dispatch plan, plus small helpers around it. Keeping a single
// instantiation keeps nvcc time modest.
#include <cub/device/device_radix_sort.cuh>

#include "core/backend/cuda/kernel_util.cuh"
#include "core/backend/cuda/sort.h"

namespace moelab::cuda {

namespace {
__global__ void iota_kernel(int64_t* out, int64_t n) { MOELAB_GRID_STRIDE(i, n) out[i] = i; }
}  // namespace

int key_bits_for(uint64_t max_key) {
  int bits = 1;
  while (bits < 64 && (max_key >> bits) != 0) ++bits;
  return bits;
}

void sort_pairs(const uint64_t* keys_in, uint64_t* keys_out, const int64_t* values_in, int64_t* values_out,
                int64_t n, int key_bits, int device) {
  if (n == 0) return;
  MOELAB_CHECK(n <= INT32_MAX, "cuda sort: " << n << " items exceed the supported 2^31");
  cudaStream_t st = stream(device);
  size_t temp_bytes = 0;
  MOELAB_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, values_in,
                                                    values_out, static_cast<int>(n), 0, key_bits, st));
  Scratch temp(temp_bytes, device);
  MOELAB_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys_in, keys_out, values_in,
                                                    values_out, static_cast<int>(n), 0, key_bits, st));
}

void iota(int64_t* out, int64_t n, int device) {
  if (n == 0) return;
  iota_kernel<<<grid_for(n, device), kThreads, 0, stream(device)>>>(out, n);
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab::cuda
