// ref: Philox draws, element i at counter offset + i (the same numbers on every backend).
#include "core/kernels/random.h"

#include "core/backend/ref/ref_backend.h"
#include "core/util/philox.h"

namespace moelab {

void RefBackend::random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi) {
  dispatch_float(out.dtype(), "random_uniform", [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i)
      p[i] = kern::uniform_value<T>(philox::uniform_at(key, offset + uint64_t(i)), lo, hi);
  });
}

void RefBackend::random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std) {
  dispatch_float(out.dtype(), "random_normal", [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i)
      p[i] = kern::normal_value<T>(philox::normal_at(key, offset + uint64_t(i)), mean, std);
  });
}

void RefBackend::dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p) {
  dispatch_float(out.dtype(), "dropout_mask", [&]<typename T>() {
    T* o = out.data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i)
      o[i] = kern::dropout_value<T>(philox::uniform_at(key, offset + uint64_t(i)), p);
  });
}

}  // namespace moelab
