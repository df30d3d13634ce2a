#include "core/backend/device_select.h"

#include <atomic>

#include "core/backend/backend.h"
#include "core/util/check.h"

namespace moelab {

Device resolve_device(const std::string& spec) {
  Device d = Device::parse(spec);
  if (d.is_cpu()) return d;
  MOELAB_CHECK(cuda_built(), "device = \""
                                 << spec
                                 << "\" needs CUDA, but moelab was built without it: rebuild on a "
                                    "machine with nvcc (cmake -DMOELAB_CUDA=ON) or use device = \"cpu\"");
  int count = cuda_device_count();
  MOELAB_CHECK(count > 0, "device = \"" << spec << "\" requested, but " << cuda_device_summary(d.index)
                                        << "; use device = \"cpu\" on this machine");
  MOELAB_CHECK(d.index < count, "device = \"" << spec << "\" requested, but this machine has " << count
                                              << " CUDA device" << (count == 1 ? "" : "s") << " (cuda:0"
                                              << (count > 1 ? " .. cuda:" + std::to_string(count - 1) : "")
                                              << ")");
  return d;
}

namespace {
std::atomic<bool> g_allow_tf32{false};
}
void set_cuda_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool cuda_allow_tf32() { return g_allow_tf32.load(); }

}  // namespace moelab
