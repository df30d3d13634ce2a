// ref: gather, scatter_add, row select/add and top-k as plain loops (scatter sums in double).
#include "core/kernels/indexing.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/backend/ref/ref_backend.h"

namespace moelab {

namespace {
// Sums run in double for float data and in int64 for integer data.
template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
}  // namespace

void check_index_range(const Tensor& index, int64_t limit, const char* kernel) {
  dispatch_index(index.dtype(), kernel, [&]<typename I>() {
    const I* p = index.data<I>();
    int64_t bad = kern::first_bad_index(p, index.numel(), limit);
    MOELAB_CHECK(bad < 0, kernel << ": index " << int64_t(bad < 0 ? 0 : p[bad]) << " at position " << bad
                                 << " is out of range [0, " << limit << ")");
  });
}

void RefBackend::gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                        int64_t inner, Tensor& out) {
  check_index_range(index, n, "gather");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "gather", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < m; ++j)
          for (int64_t i = 0; i < inner; ++i) {
            int64_t at = (o * m + j) * inner + i;
            po[at] = ps[(o * n + int64_t(pi[at])) * inner + i];
          }
    });
  });
}

void RefBackend::scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                             int64_t inner, Tensor& out) {
  check_index_range(index, n, "scatter_add");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "scatter_add", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      // Each output element sums its initial value and its contributions (in increasing m) in Acc.
      std::vector<Acc<T>> acc(static_cast<size_t>(outer * n * inner));
      for (size_t k = 0; k < acc.size(); ++k) acc[k] = Acc<T>(po[k]);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < m; ++j)
          for (int64_t i = 0; i < inner; ++i) {
            int64_t at = (o * m + j) * inner + i;
            acc[(o * n + int64_t(pi[at])) * inner + i] += Acc<T>(ps[at]);
          }
      for (size_t k = 0; k < acc.size(); ++k) po[k] = static_cast<T>(acc[k]);
    });
  });
}

void RefBackend::index_select_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = src.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(M, 1);
  check_index_range(index, N, "index_select_rows");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "index_select_rows", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      for (int64_t j = 0; j < M; ++j)
        for (int64_t r = 0; r < R; ++r) po[j * R + r] = ps[int64_t(pi[j]) * R + r];
    });
  });
}

void RefBackend::index_add_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = out.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(N, 1);
  check_index_range(index, N, "index_add_rows");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "index_add_rows", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      std::vector<Acc<T>> acc(static_cast<size_t>(N * R));
      for (size_t k = 0; k < acc.size(); ++k) acc[k] = Acc<T>(po[k]);
      for (int64_t j = 0; j < M; ++j)
        for (int64_t r = 0; r < R; ++r) acc[int64_t(pi[j]) * R + r] += Acc<T>(ps[j * R + r]);
      for (size_t k = 0; k < acc.size(); ++k) po[k] = static_cast<T>(acc[k]);
    });
  });
}

void RefBackend::topk(const Tensor& x, int64_t k, Tensor& values, Tensor& indices) {
  int64_t M = x.size(0), N = x.size(1);
  MOELAB_CHECK(k >= 0 && k <= N, "topk: k = " << k << " for rows of " << N);
  dispatch_float(x.dtype(), "topk", [&]<typename T>() {
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    int64_t* pi = indices.data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(N));
    for (int64_t r = 0; r < M; ++r) {
      const T* xr = px + r * N;
      std::iota(order.begin(), order.end(), int64_t(0));
      // A stable sort by "greater" (NaN above everything) leaves ties in index order.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        T va = xr[a], vb = xr[b];
        if (va != va) return vb == vb;
        return vb == vb && va > vb;
      });
      for (int64_t j = 0; j < k; ++j) {
        pv[r * k + j] = xr[order[j]];
        pi[r * k + j] = order[j];
      }
    }
  });
}

}  // namespace moelab
