#pragma once
// Host-side iteration over strided tensors: visits every element of `shape` in row-major order,
// giving each operand's element offset. Used by copy and broadcasting binary kernels on ref and cpu.
#include <algorithm>
#include <cstdint>

#include "core/tensor/shape.h"

namespace moelab {

// Offsets of `count` consecutive row-major positions starting at linear index `start`, for up to 3
// operands; f(i, off0, off1, off2) is called for each. The last dim is walked with a plain stride.
template <int N, typename F>
void for_each_strided(const Shape& shape, const Strides* strides[N], int64_t start, int64_t count, F&& f) {
  int nd = shape.size();
  if (nd == 0) {
    int64_t offs[3] = {0, 0, 0};
    if (count > 0) f(int64_t(0), offs);
    return;
  }
  int64_t idx[kMaxDims];
  int64_t offs[3] = {0, 0, 0};
  int64_t rem = start;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % shape[d];
    rem /= shape[d];
  }
  for (int k = 0; k < N; ++k)
    for (int d = 0; d < nd; ++d) offs[k] += idx[d] * (*strides[k])[d];
  int64_t last = shape[nd - 1];
  int64_t i = start, end = start + count;
  while (i < end) {
    int64_t run = std::min(last - idx[nd - 1], end - i);
    int64_t o[3] = {offs[0], offs[1], offs[2]};
    int64_t s[3] = {N > 0 ? (*strides[0])[nd - 1] : 0, N > 1 ? (*strides[1])[nd - 1] : 0,
                    N > 2 ? (*strides[2])[nd - 1] : 0};
    for (int64_t r = 0; r < run; ++r) {
      f(i + r, o);
      o[0] += s[0];
      o[1] += s[1];
      o[2] += s[2];
    }
    i += run;
    // advance the multi-index by `run` along the last dim, carrying into outer dims
    idx[nd - 1] += run;
    for (int k = 0; k < N; ++k) offs[k] += run * (*strides[k])[nd - 1];
    for (int d = nd - 1; d > 0 && idx[d] == shape[d]; --d) {
      idx[d] = 0;
      idx[d - 1] += 1;
      for (int k = 0; k < N; ++k) offs[k] += (*strides[k])[d - 1] - shape[d] * (*strides[k])[d];
    }
  }
}

}  // namespace moelab
