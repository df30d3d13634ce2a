// cuda: Philox draws (core/util/philox.h) through the shared per-element transforms
// (core/kernels/random.h): element i uses counter offset + i, so the numbers equal the cpu backend's.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/random.h"
#include "core/util/philox.h"

namespace moelab {

using namespace cuda;

namespace {

enum class Draw { uniform, normal, dropout };

template <Draw D, typename T>
__global__ void random_kernel(T* out, int64_t n, uint64_t key, uint64_t offset, double a, double b) {
  MOELAB_GRID_STRIDE(i, n) {
    uint64_t c = offset + static_cast<uint64_t>(i);
    if constexpr (D == Draw::uniform)
      out[i] = kern::uniform_value<T>(philox::uniform_at(key, c), a, b);
    else if constexpr (D == Draw::normal)
      out[i] = kern::normal_value<T>(philox::normal_at(key, c), a, b);
    else
      out[i] = kern::dropout_value<T>(philox::uniform_at(key, c), a);
  }
}

template <Draw D>
void launch(Tensor& out, uint64_t key, uint64_t offset, double a, double b, const char* name) {
  int64_t n = out.numel();
  if (n == 0) return;
  MOELAB_CHECK(out.is_contiguous(), "cuda " << name << ": output must be contiguous");
  int dev = device_of(out);
  cudaStream_t st = stream_for(out);
  for_float_dtype(out.dtype(), name, [&]<typename T>() {
    random_kernel<D, T><<<grid_for(n, dev), kThreads, 0, st>>>(out.data<T>(), n, key, offset, a, b);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi) {
  launch<Draw::uniform>(out, key, offset, lo, hi, "random_uniform");
}
void CudaBackend::random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std) {
  launch<Draw::normal>(out, key, offset, mean, std, "random_normal");
}
void CudaBackend::dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p) {
  launch<Draw::dropout>(out, key, offset, p, 0.0, "dropout_mask");
}

}  // namespace moelab
