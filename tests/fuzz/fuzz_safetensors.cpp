// libFuzzer target: safetensors parsing (header JSON, layout rules, checksums) and typed reads.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::io;
  try {
    SafetensorsFile f = parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    double sum = 0;
    for (const auto& t : f.tensors()) {
      (void)t.shape_str();
      (void)t.numel();
      if (!t.has_dtype()) continue;
      switch (t.dtype()) {
        case moelab::DType::f32: for (float v : t.span<float>()) sum += v; break;
        case moelab::DType::f64: for (double v : t.span<double>()) sum += v; break;
        case moelab::DType::i32: for (int32_t v : t.span<int32_t>()) sum += v; break;
        case moelab::DType::i64: for (int64_t v : t.span<int64_t>()) sum += static_cast<double>(v); break;
      }
    }
    // Whatever parsed must write back and parse again to the same tensors.
    std::vector<SafetensorsView> views;
    for (const auto& t : f.tensors()) views.push_back(t.view());
    SafetensorsFile again = parse_safetensors(serialize_safetensors(views, f.metadata()), "again");
    if (again.names().size() != f.names().size()) __builtin_trap();
    (void)sum;
  } catch (const SafetensorsError&) {
  }
  return 0;
}
