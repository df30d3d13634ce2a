// Linked when moelab is built without CUDA: every entry says so (DESIGN.md §2: no #ifdefs in callers).
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
}  // namespace

Backend& cuda_backend() {
  static CudaStubBackend b;
  return b;
}
bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_summary(int) { return "moelab was built without CUDA"; }

}  // namespace moelab
