#pragma once
// Where a bench row ran: the device, its name (CPU model and ISA, or the GPU), the dtype, and the peak
// memory of the row (peak RSS on the host, the CUDA allocator pool's high-water mark on a GPU).
#include <cstdint>
#include <string>

#include "core/tensor/device.h"
#include "core/tensor/dtype.h"

namespace moelab::bench {

// The widest x86 vector ISA this CPU offers, in oneDNN's names (avx512_core_amx, avx512_core_bf16,
// avx512_core_vnni, avx512_core, avx2, sse41), or the architecture name elsewhere (aarch64 with sve/neon).
std::string cpu_isa();
// "model name" of /proc/cpuinfo (empty when unknown).
std::string cpu_model();

// "f32", "fp32", "float32" -> f32; "f64", "fp64", "float64" -> f64; anything else throws, naming the choices.
DType parse_bench_dtype(const std::string& text);

// Starts a row's peak-memory window on `device` (host: resets the kernel's peak RSS of this process).
void reset_peak_memory(Device device);
// Peak bytes since the last reset: VmHWM of /proc/self/status on the host; on CUDA the allocator pool's
// used-memory high-water mark.
uint64_t peak_memory_bytes(Device device);

// JSON members (no braces, no trailing comma) naming the row's machine:
//   "device": "cpu", "device_name": "...", "isa": "avx512_core_bf16", "blas": "...", "dtype": "f32",
//   "peak_memory_bytes": N, "peak_memory_kind": "rss" | "cuda_pool_high_water"
std::string machine_json(Device device, DType dtype, uint64_t peak_bytes);
// One line for a table header: "cpu (AMD EPYC ..., avx512_core_bf16, OpenBLAS ...), f32".
std::string machine_line(Device device, DType dtype);

}  // namespace moelab::bench
