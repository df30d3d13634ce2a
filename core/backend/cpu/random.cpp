// cpu: Philox draws in parallel; element i always uses counter offset + i, so the numbers do not depend
// on the thread count or the backend.
#include "core/kernels/random.h"

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"
#include "core/util/philox.h"

namespace moelab {

void CpuBackend::random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi) {
  dispatch_float(out.dtype(), "random_uniform", [&]<typename T>() {
    T* p = out.data<T>();
    cpu::parallel_for(out.numel(), cpu::kParallelGrain / 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        p[i] = kern::uniform_value<T>(philox::uniform_at(key, offset + uint64_t(i)), lo, hi);
    });
  });
}

void CpuBackend::random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std) {
  dispatch_float(out.dtype(), "random_normal", [&]<typename T>() {
    T* p = out.data<T>();
    cpu::parallel_for(out.numel(), cpu::kParallelGrain / 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        p[i] = kern::normal_value<T>(philox::normal_at(key, offset + uint64_t(i)), mean, std);
    });
  });
}

void CpuBackend::dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p) {
  dispatch_float(out.dtype(), "dropout_mask", [&]<typename T>() {
    T* o = out.data<T>();
    cpu::parallel_for(out.numel(), cpu::kParallelGrain / 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        o[i] = kern::dropout_value<T>(philox::uniform_at(key, offset + uint64_t(i)), p);
    });
  });
}

}  // namespace moelab
