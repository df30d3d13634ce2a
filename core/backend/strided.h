#pragma once
// Host-side iteration over strided tensors: visits every element of `shape` in row-major order,
// giving each operand's element offset (or whole innermost runs). Used by copy and broadcasting binary
// kernels on ref and cpu.
#include <algorithm>
#include <cstdint>

#include "core/kernels/attention.h"
#include "core/tensor/shape.h"
#include "core/tensor/tensor.h"

namespace moelab {

// Row access into one (B, H, T, D) operand with a unit last-dim stride (the attention kernels of ref and cpu).
template <typename T>
struct HeadView {
  const T* data;
  kern::HeadStrides s;
  explicit HeadView(const Tensor& x) : data(x.data<T>()), s{x.strides()[0], x.strides()[1], x.strides()[2]} {}
  const T* row(int64_t b, int64_t h, int64_t t) const { return data + b * s.batch + h * s.head + t * s.row; }
};

// Merges adjacent dims that every operand walks as one (stride[d-1] == stride[d] * shape[d]) and drops
// size-1 dims: the same row-major element order with longer innermost runs.
template <int N>
int coalesce_dims(const Shape& shape, const Strides* strides[N], int64_t* out_shape, int64_t out_strides[][kMaxDims]) {
  int nd = 0;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = out_strides[k][nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      out_shape[nd - 1] *= shape[d];
      for (int k = 0; k < N; ++k) out_strides[k][nd - 1] = (*strides[k])[d];
    } else {
      out_shape[nd] = shape[d];
      for (int k = 0; k < N; ++k) out_strides[k][nd] = (*strides[k])[d];
      ++nd;
    }
  }
  if (nd == 0) {  // a scalar or all size-1 dims: one element
    out_shape[0] = 1;
    for (int k = 0; k < N; ++k) out_strides[k][0] = 0;
    nd = 1;
  }
  return nd;
}

// Visits `count` consecutive row-major positions starting at linear index `start` as runs along the
// innermost (coalesced) dim, for up to 3 operands: g(i, off, step, run) gives the run's first linear
// index, each operand's first offset and its stride within the run.
template <int N, typename G>
void for_each_strided_run(const Shape& shape, const Strides* strides[N], int64_t start, int64_t count, G&& g) {
  if (count <= 0) return;
  int64_t sh[kMaxDims], st[3][kMaxDims] = {};
  const int nd = coalesce_dims<N>(shape, strides, sh, st);
  int64_t idx[kMaxDims];
  int64_t offs[3] = {0, 0, 0};
  int64_t rem = start;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rem % sh[d];
    rem /= sh[d];
  }
  for (int k = 0; k < N; ++k)
    for (int d = 0; d < nd; ++d) offs[k] += idx[d] * st[k][d];
  const int64_t last = sh[nd - 1];
  const int64_t step[3] = {st[0][nd - 1], st[1][nd - 1], st[2][nd - 1]};
  int64_t i = start, end = start + count;
  while (i < end) {
    int64_t run = std::min(last - idx[nd - 1], end - i);
    g(i, static_cast<const int64_t*>(offs), static_cast<const int64_t*>(step), run);
    i += run;
    // advance the multi-index by `run` along the last dim, carrying into outer dims
    idx[nd - 1] += run;
    for (int k = 0; k < N; ++k) offs[k] += run * step[k];
    for (int d = nd - 1; d > 0 && idx[d] == sh[d]; --d) {
      idx[d] = 0;
      idx[d - 1] += 1;
      for (int k = 0; k < N; ++k) offs[k] += st[k][d - 1] - sh[d] * st[k][d];
    }
  }
}

// Offsets of `count` consecutive row-major positions starting at linear index `start`, for up to 3
// operands; f(i, off) is called for each element with off[k] the offset of operand k.
template <int N, typename F>
void for_each_strided(const Shape& shape, const Strides* strides[N], int64_t start, int64_t count, F&& f) {
  for_each_strided_run<N>(shape, strides, start, count,
                          [&](int64_t i, const int64_t* off, const int64_t* step, int64_t run) {
                            int64_t o[3] = {off[0], off[1], off[2]};
                            for (int64_t r = 0; r < run; ++r) {
                              f(i + r, static_cast<const int64_t*>(o));
                              for (int k = 0; k < N; ++k) o[k] += step[k];
                            }
                          });
}

}  // namespace moelab
