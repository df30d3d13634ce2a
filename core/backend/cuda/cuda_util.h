#pragma once
// Host-side CUDA plumbing shared by the cuda backend's files: checked calls (file:line and the library's
// error string), the per-device stream, cuBLAS handle and stream-ordered memory pool, and scratch buffers.
// Every kernel of a device runs on that device's one stream, so stream order is the only ordering needed.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/tensor/tensor.h"
#include "core/util/check.h"

namespace moelab::cuda {

[[noreturn]] void throw_cuda_error(const char* file, int line, const char* expr, cudaError_t err);
[[noreturn]] void throw_cublas_error(const char* file, int line, const char* expr, cublasStatus_t status);

}  // namespace moelab::cuda

// Every CUDA runtime call goes through this: an error throws moelab::Error naming the call and file:line.
#define MOELAB_CUDA_CHECK(expr)                                                      \
  do {                                                                               \
    cudaError_t moelab_cuda_err_ = (expr);                                           \
    if (moelab_cuda_err_ != cudaSuccess) [[unlikely]]                                \
      ::moelab::cuda::throw_cuda_error(__FILE__, __LINE__, #expr, moelab_cuda_err_); \
  } while (0)
// After every kernel launch: catches bad launch configurations (asynchronous faults surface at the next
// sync).
#define MOELAB_CUDA_CHECK_LAUNCH() MOELAB_CUDA_CHECK(cudaGetLastError())
#define MOELAB_CUBLAS_CHECK(expr)                                                       \
  do {                                                                                  \
    cublasStatus_t moelab_cublas_st_ = (expr);                                          \
    if (moelab_cublas_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                        \
      ::moelab::cuda::throw_cublas_error(__FILE__, __LINE__, #expr, moelab_cublas_st_); \
  } while (0)

namespace moelab::cuda {

// Number of devices; 0 when the driver or a device is missing (never throws).
int device_count();
// Makes `device` current on this thread and returns its stream (created on first use).
cudaStream_t stream(int device);
// The stream of the device a tensor lives on (made current).
inline cudaStream_t stream_for(const Tensor& t) {
  MOELAB_CHECK(t.device().is_cuda(), "cuda kernel given a tensor on " << t.device().str());
  return stream(t.device().index);
}
// The device's cuBLAS handle, bound to its stream; the math mode follows set_cuda_allow_tf32().
cublasHandle_t cublas(int device);
// Stream-ordered allocation from the device's pool (cudaMallocAsync); free is stream-ordered too.
void* pool_allocate(size_t nbytes, int device);
void pool_free(void* p, int device) noexcept;
// Number of multiprocessors of the device (for sizing grid-stride launches).
int sm_count(int device);

// Scratch memory for one kernel sequence, returned to the pool (stream-ordered) when it goes out of scope.
class Scratch {
 public:
  Scratch(size_t nbytes, int device)
      : device_(device), ptr_(nbytes ? pool_allocate(nbytes, device) : nullptr) {}
  ~Scratch() {
    if (ptr_) pool_free(ptr_, device_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }

 private:
  int device_;
  void* ptr_;
};

// Validation of index tensors on the device: kernels record the lowest out-of-range position
// (record_bad_index in kernel_util.cuh) and first_bad() waits for the stream and reads it back. This is a
// host synchronization point (kernels that take indices throw on bad ones, as the interface promises).
class IndexFault {
 public:
  explicit IndexFault(int device);
  unsigned long long* slot() const { return slot_.as<unsigned long long>(); }
  // Position of the first bad entry, or -1. Synchronizes the device's stream.
  int64_t first_bad() const;
  // Throws "<kernel>: index V at position P is out of range [0, limit)" when a position was recorded.
  void check(const char* kernel, const Tensor& index, int64_t limit) const;

 private:
  int device_;
  Scratch slot_;
};
// The value of index[position] (i32 or i64 on a device), read back to the host.
int64_t read_index_at(const Tensor& index, int64_t position);

// Grid-stride launch sizes: enough blocks to fill the device, never more than the work needs.
constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n, int device, int threads = kThreads) {
  int64_t need = (n + threads - 1) / threads;
  int64_t cap = int64_t(sm_count(device)) * 32;
  int64_t g = need < cap ? need : cap;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

}  // namespace moelab::cuda
