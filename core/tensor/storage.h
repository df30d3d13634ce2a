#pragma once
// Reference-counted byte buffers. Host memory comes from a size-bucketed cache (large training buffers
// are reused instead of being mapped and page-faulted on every step); device memory from the cuda backend.
#include <cstddef>
#include <memory>

#include "core/tensor/device.h"

namespace moelab {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;
  Device device_;
};

// Host allocator statistics, for tests and benchmarks. peak_bytes_in_use: the most bytes in use at once
// since the start or the last host_allocator_reset_peak().
struct HostAllocatorStats {
  size_t bytes_in_use = 0, bytes_cached = 0, allocations = 0, cache_hits = 0, peak_bytes_in_use = 0;
};
HostAllocatorStats host_allocator_stats();
void host_allocator_reset_peak();  // peak_bytes_in_use = bytes_in_use
void host_allocator_release_cache();

}  // namespace moelab
