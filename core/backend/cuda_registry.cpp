// The CUDA backend is a separate library that registers itself here when it is linked (moelab_cuda,
// whole-archived into programs); without it every entry says that moelab was built without CUDA. So core
// never depends on the CUDA library and callers never #ifdef.
#include "core/backend/backend.h"
#include "core/backend/device_select.h"

namespace moelab {

namespace {
class CudaStubBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::cuda; }
  bool available() const override { return false; }
  void* device_allocate(size_t, Device d) override { fail(d); }
  void device_free(void*, Device) override {}
  void copy_across(const Tensor&, Tensor&) override { fail(Device::cuda()); }

 private:
  [[noreturn]] void fail(Device d) const {
    MOELAB_FAIL("device " << d.str()
                          << " requested, but moelab was built without CUDA "
                             "(reconfigure with -DMOELAB_CUDA=ON on a machine with nvcc)");
  }
};

CudaRuntime& registered() {
  static CudaRuntime runtime;
  return runtime;
}
}  // namespace

bool register_cuda_runtime(const CudaRuntime& runtime) {
  registered() = runtime;
  return true;
}

Backend& cuda_backend() {
  static CudaStubBackend stub;
  return registered().backend ? *registered().backend() : stub;
}
bool cuda_built() { return registered().backend != nullptr; }
int cuda_device_count() { return cuda_built() ? registered().device_count() : 0; }
std::string cuda_device_summary(int index) {
  return cuda_built() ? registered().device_summary(index) : "moelab was built without CUDA";
}
uint64_t cuda_memory_high_water(int index) {
  return index < cuda_device_count() ? registered().memory_high_water(index) : 0;
}
void cuda_reset_memory_high_water(int index) {
  if (index < cuda_device_count()) registered().reset_memory_high_water(index);
}

}  // namespace moelab
