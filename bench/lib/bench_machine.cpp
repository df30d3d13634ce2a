// Machine facts for bench rows: /proc/cpuinfo for the CPU model and ISA, VmHWM (reset through
// /proc/self/clear_refs) for the peak RSS, the CUDA runtime hooks for the GPU pool high-water mark.
#include "bench/lib/bench_machine.h"

#include <cblas.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/backend/device_select.h"

namespace moelab::bench {

namespace {

// The first "<key>\t: value" line of /proc/cpuinfo.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(' ', colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::set<std::string> cpu_flags() {
  std::set<std::string> flags;
  std::string text = cpuinfo_field("flags");
  if (text.empty()) text = cpuinfo_field("Features");  // aarch64
  std::istringstream words(text);
  for (std::string w; words >> w;) flags.insert(w);
  return flags;
}

}  // namespace

std::string cpu_isa() {
#if defined(__x86_64__)
  const std::set<std::string> f = cpu_flags();
  auto has = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (!f.count(n)) return false;
    return true;
  };
  const bool core = has({"avx512f", "avx512bw", "avx512vl", "avx512dq"});
  if (core && has({"amx_bf16", "amx_tile"})) return "avx512_core_amx";
  if (core && has({"avx512_bf16"})) return "avx512_core_bf16";
  if (core && has({"avx512_vnni"})) return "avx512_core_vnni";
  if (core) return "avx512_core";
  if (has({"avx2", "fma"})) return "avx2";
  if (has({"sse4_1"})) return "sse41";
  return "x86_64";
#elif defined(__aarch64__)
  const std::set<std::string> f = cpu_flags();
  return f.count("sve") ? "aarch64 (sve)" : "aarch64 (neon)";
#else
  return "unknown";
#endif
}

std::string cpu_model() { return cpuinfo_field("model name"); }

DType parse_bench_dtype(const std::string& text) {
  if (text == "f32" || text == "fp32" || text == "float32") return DType::f32;
  if (text == "f64" || text == "fp64" || text == "float64") return DType::f64;
  throw std::runtime_error("--dtype '" + text + "' is not one of: f32 (fp32, float32), f64 (fp64, float64)");
}

void reset_peak_memory(Device device) {
  if (device.is_cuda()) {
    cuda_reset_memory_high_water(device.index);
    return;
  }
  // "5" resets the peak resident set size (VmHWM) to the current one (Linux, proc(5)).
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

uint64_t peak_memory_bytes(Device device) {
  if (device.is_cuda()) return cuda_memory_high_water(device.index);
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  return 0;
}

std::string machine_json(Device device, DType dtype, uint64_t peak_bytes) {
  nlohmann::ordered_json j;
  j["device"] = device.str();
  if (device.is_cuda()) {
    j["device_name"] = cuda_device_summary(device.index);
  } else {
    j["device_name"] = cpu_model();
    j["isa"] = cpu_isa();
    j["blas"] = std::string("OpenBLAS ") + openblas_get_corename();
  }
  j["dtype"] = std::string(dtype_name(dtype));
  j["peak_memory_bytes"] = peak_bytes;
  j["peak_memory_kind"] = device.is_cuda() ? "cuda_pool_high_water" : "rss";
  std::string text = j.dump();
  return text.substr(1, text.size() - 2);  // members only, to splice into a row
}

std::string machine_line(Device device, DType dtype) {
  std::string where = device.is_cuda() ? cuda_device_summary(device.index)
                                       : device.str() + " (" + cpu_model() + ", " + cpu_isa() + ", OpenBLAS " +
                                             openblas_get_corename() + ")";
  return where + ", " + std::string(dtype_name(dtype));
}

}  // namespace moelab::bench
