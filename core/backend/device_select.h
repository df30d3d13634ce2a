#pragma once
// Device selection for configs (`device = "cpu" | "cuda" | "cuda:1"`) and CUDA switches that the
// program sets from its config. These work in every build: without CUDA they say it was not built.
#include <cstdint>
#include <string>

#include "core/backend/backend.h"
#include "core/tensor/device.h"

namespace moelab {

// Parses and validates a device key: "cpu", "cuda" (= cuda:0) or "cuda:N". Throws a clear error when
// moelab was built without CUDA, when no CUDA device (or driver) is present, or when N is out of range.
Device resolve_device(const std::string& spec);

// What the CUDA library registers when it is linked (core/backend/cuda_registry.cpp).
struct CudaRuntime {
  Backend* (*backend)() = nullptr;
  int (*device_count)() = nullptr;
  std::string (*device_summary)(int index) = nullptr;
  uint64_t (*memory_high_water)(int index) = nullptr;
  void (*reset_memory_high_water)(int index) = nullptr;
};
bool register_cuda_runtime(const CudaRuntime& runtime);

// Number of usable CUDA devices: 0 when built without CUDA or when no driver/device is present.
int cuda_device_count();
// One line naming the device, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, driver 13.0)";
// or why there is none ("moelab was built without CUDA", "no CUDA device: <driver error>").
std::string cuda_device_summary(int index = 0);

// Most bytes of the device's allocator pool in use at once since the start or the last reset (0 when
// built without CUDA or without a device): the benches' peak memory on CUDA.
uint64_t cuda_memory_high_water(int index = 0);
void cuda_reset_memory_high_water(int index = 0);

// TF32 tensor-core maths for f32 matmuls on CUDA (off by default: f32 results then match the cpu
// backend to f32 rounding). Takes effect at the next matmul.
void set_cuda_allow_tf32(bool allow);
bool cuda_allow_tf32();

}  // namespace moelab
