// cpu: gather, scatter_add, row select/add and top-k. Scatters are deterministic without atomics:
// scatter_add splits work by (outer, inner) columns, which never write the same element, and
// index_add_rows groups the source rows by destination (a stable counting sort) and gives each
// destination row to one thread, which adds its sources in increasing order.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

void CpuBackend::gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                        int64_t inner, Tensor& out) {
  check_index_range(index, n, "gather");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "gather", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      cpu::parallel_for(outer * m, cpu::row_grain(inner), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* base = ps + (r / m) * n * inner;
          const I* ir = pi + r * inner;
          T* orow = po + r * inner;
          for (int64_t i = 0; i < inner; ++i) orow[i] = base[int64_t(ir[i]) * inner + i];
        }
      });
    });
  });
}

void CpuBackend::scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                             int64_t inner, Tensor& out) {
  check_index_range(index, n, "scatter_add");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "scatter_add", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      // Tasks are (o, block of inner columns); within a task, contributions are added in increasing m.
      int64_t block = std::min<int64_t>(std::max<int64_t>(inner, 1), 256);
      int64_t blocks = (inner + block - 1) / block;
      cpu::parallel_for(
          outer * blocks, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(m * block, 1)),
          [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
              int64_t o = t / blocks, i0 = (t % blocks) * block, i1 = std::min(inner, i0 + block);
              T* ob = po + o * n * inner;
              for (int64_t j = 0; j < m; ++j) {
                const T* sr = ps + (o * m + j) * inner;
                const I* ir = pi + (o * m + j) * inner;
                for (int64_t i = i0; i < i1; ++i) ob[int64_t(ir[i]) * inner + i] += sr[i];
              }
            }
          });
    });
  });
}

void CpuBackend::index_select_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = src.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(M, 1);
  check_index_range(index, N, "index_select_rows");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "index_select_rows", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      cpu::parallel_for(M, cpu::row_grain(R), [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) std::memcpy(po + j * R, ps + int64_t(pi[j]) * R, sizeof(T) * R);
      });
    });
  });
}

void CpuBackend::index_add_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = out.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(N, 1);
  check_index_range(index, N, "index_add_rows");
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    dispatch_index(index.dtype(), "index_add_rows", [&]<typename I>() {
      const T* ps = src.data<T>();
      const I* pi = index.data<I>();
      T* po = out.data<T>();
      // Stable counting sort of source rows by destination: sources of row d are order[start[d]..start[d+1]).
      std::vector<int64_t> start(N + 1, 0), order(M);
      for (int64_t j = 0; j < M; ++j) ++start[int64_t(pi[j]) + 1];
      for (int64_t d = 0; d < N; ++d) start[d + 1] += start[d];
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t j = 0; j < M; ++j) order[fill[int64_t(pi[j])]++] = j;
      cpu::parallel_for(N,
                        std::max<int64_t>(1, cpu::kParallelGrain /
                                                 std::max<int64_t>(R * (M / std::max<int64_t>(N, 1) + 1), 1)),
                        [&](int64_t d0, int64_t d1) {
                          for (int64_t d = d0; d < d1; ++d) {
                            T* orow = po + d * R;
                            for (int64_t s = start[d]; s < start[d + 1]; ++s) {
                              const T* srow = ps + order[s] * R;
                              for (int64_t r = 0; r < R; ++r) orow[r] += srow[r];
                            }
                          }
                        });
    });
  });
}

void CpuBackend::topk(const Tensor& x, int64_t k, Tensor& values, Tensor& indices) {
  int64_t M = x.size(0), N = x.size(1);
  MOELAB_CHECK(k >= 0 && k <= N, "topk: k = " << k << " for rows of " << N);
  dispatch_float(x.dtype(), "topk", [&]<typename T>() {
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    int64_t* pi = indices.data<int64_t>();
    cpu::parallel_for(M, cpu::row_grain(N * 4), [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> order(N);
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = px + r * N;
        std::iota(order.begin(), order.end(), int64_t(0));
        // A strict total order (value descending, NaN first, then index ascending) makes the result unique.
        auto before = [xr](int64_t a, int64_t b) {
          T va = xr[a], vb = xr[b];
          bool na = va != va, nb = vb != vb;
          if (na != nb) return na;
          if (!na && va != vb) return va > vb;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          pv[r * k + j] = xr[order[j]];
          pi[r * k + j] = order[j];
        }
      }
    });
  });
}

}  // namespace moelab
