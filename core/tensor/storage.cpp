#include "core/tensor/storage.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/backend/backend.h"
#include "core/util/check.h"

namespace moelab {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    size_t pos = 0;
    int idx = -1;
    try {
      idx = std::stoi(s.substr(5), &pos);
    } catch (...) {
    }
    MOELAB_CHECK(idx >= 0 && pos == s.size() - 5, "bad device '" << s << "': expected cpu, cuda or cuda:N");
    return cuda(idx);
  }
  MOELAB_FAIL("bad device '" << s << "': expected cpu, cuda or cuda:N");
}

namespace {

// Buffers of at least kCacheMin bytes are rounded up to a power of two and cached per size.
constexpr size_t kAlign = 64, kCacheMin = 1 << 16, kCacheMaxBytes = size_t(2) << 30;

struct HostCache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_lists;
  HostAllocatorStats stats;

  static size_t round_up(size_t n) {
    if (n < kCacheMin) return (n + kAlign - 1) / kAlign * kAlign;
    size_t p = kCacheMin;
    while (p < n) p <<= 1;
    return p;
  }
  void* allocate(size_t cap) {
    std::lock_guard<std::mutex> lock(mu);
    stats.allocations++;
    stats.bytes_in_use += cap;
    stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
    if (cap >= kCacheMin) {
      auto it = free_lists.find(cap);
      if (it != free_lists.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats.bytes_cached -= cap;
        stats.cache_hits++;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlign, std::max(cap, kAlign));
    MOELAB_CHECK(p, "out of host memory allocating " << cap << " bytes");
    return p;
  }
  void release(void* p, size_t cap) {
    std::lock_guard<std::mutex> lock(mu);
    stats.bytes_in_use -= cap;
    if (cap >= kCacheMin && stats.bytes_cached + cap <= kCacheMaxBytes) {
      free_lists[cap].push_back(p);
      stats.bytes_cached += cap;
      return;
    }
    std::free(p);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [cap, list] : free_lists)
      for (void* p : list) std::free(p);
    free_lists.clear();
    stats.bytes_cached = 0;
  }
};

HostCache& host_cache() {
  static HostCache* cache = new HostCache();  // never destroyed: storages may outlive static teardown
  return *cache;
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    capacity_ = HostCache::round_up(nbytes);
    data_ = host_cache().allocate(capacity_);
  } else {
    capacity_ = nbytes;
    data_ = cuda_backend().device_allocate(nbytes, device);
  }
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cpu())
    host_cache().release(data_, capacity_);
  else
    cuda_backend().device_free(data_, device_);
}

HostAllocatorStats host_allocator_stats() {
  std::lock_guard<std::mutex> lock(host_cache().mu);
  return host_cache().stats;
}
void host_allocator_release_cache() { host_cache().clear(); }
void host_allocator_reset_peak() {
  std::lock_guard<std::mutex> lock(host_cache().mu);
  host_cache().stats.peak_bytes_in_use = host_cache().stats.bytes_in_use;
}

}  // namespace moelab
