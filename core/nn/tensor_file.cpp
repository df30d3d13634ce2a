// Named tensors <-> safetensors files.
#include "core/nn/tensor_file.h"

#include <cstring>

namespace moelab::nn {

void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;  // keeps the contiguous host copies alive while writing
  std::vector<io::SafetensorsView> views;
  host.reserve(tensors.size());
  views.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    MOELAB_CHECK(t.defined(), "save_tensors(" << path << "): tensor '" << name << "' is undefined");
    host.push_back(t.detach().to(Device::cpu()).contiguous());
    const Tensor& h = host.back();
    views.push_back({name, h.dtype(), h.shape().vec(), h.raw_data(), h.nbytes(), std::nullopt});
  }
  io::write_safetensors(path, views, metadata);
}

Tensor to_tensor(const io::SafetensorsTensor& t, const std::string& source) {
  MOELAB_CHECK(t.has_dtype(), source << ": tensor '" << t.name << "' has dtype " << io::st_dtype_name(t.st_dtype)
                                     << ", which moelab cannot compute on (F32, F64, I32, I64 only)");
  Tensor out = Tensor::empty(Shape(t.shape), t.dtype());
  MOELAB_CHECK(out.nbytes() == t.nbytes, source << ": tensor '" << t.name << "' has " << t.nbytes
                                                << " bytes for shape " << t.shape_str());
  if (t.nbytes) std::memcpy(out.raw_data(), t.data, t.nbytes);
  return out;
}

NamedTensors load_tensors(const std::string& path) {
  io::SafetensorsFile f = io::read_safetensors(path);
  NamedTensors out;
  out.reserve(f.size());
  for (const auto& t : f.tensors()) out.emplace_back(t.name, to_tensor(t, path));
  return out;
}

const Tensor* find_tensor(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace moelab::nn
