#pragma once
// Named tensors <-> safetensors files (core/io/safetensors.h works on raw bytes; this adapts Tensor).
// Used for model state dicts and optimizer state; names are kept exactly (PyTorch-style dotted names).
#include <map>
#include <string>

#include "core/io/safetensors.h"
#include "core/nn/module.h"

namespace moelab::nn {

// Writes atomically; tensors may be strided or on a device (they are copied to contiguous host memory).
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});
// All tensors of a file, in the file's order, as host tensors (F32/F64/I32/I64; other dtypes are errors
// naming the tensor).
NamedTensors load_tensors(const std::string& path);
// One tensor of a parsed file as a host Tensor (a copy).
Tensor to_tensor(const io::SafetensorsTensor& t, const std::string& source);
// Finds `name` in `tensors` (nullptr when absent).
const Tensor* find_tensor(const NamedTensors& tensors, const std::string& name);

}  // namespace moelab::nn
