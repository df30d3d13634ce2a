// cpu: reductions over the middle axis of (outer, n, inner). Sums run in double over tasks that depend on
// the shape only: (outer, block of inner columns) tasks, and when those are too few to keep threads busy,
// also fixed chunks of n whose partial sums are added in chunk order. Results are therefore the same for
// any thread count.
#include <algorithm>
#include <vector>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

namespace {
constexpr int64_t kInnerBlock = 1024;  // columns per task
constexpr int64_t kMinTasks = 16;      // fewer (outer, block) tasks than this: also split n

// Sum of n contiguous values in eight fixed lanes (vectorizable, order fixed by n alone).
template <typename T>
double sum_contiguous(const T* p, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) lane[k] += double(p[j + k]);
  for (; j < n; ++j) lane[j % 8] += double(p[j]);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

template <typename T>
void reduce_sum(const T* px, int64_t outer, int64_t n, int64_t inner, T* po) {
  int64_t block = std::min(inner, kInnerBlock), blocks = (inner + block - 1) / block;
  int64_t tasks = outer * blocks;
  int64_t jstep = n;
  if (tasks < kMinTasks)
    jstep = std::max<int64_t>({(n + cpu::kMaxChunks - 1) / cpu::kMaxChunks, cpu::kParallelGrain / block, 1});
  int64_t jchunks = (n + jstep - 1) / jstep;
  // partial[(task * jchunks + jc) * block + i]; written straight to the output when n is not split.
  std::vector<double> partial(jchunks > 1 ? tasks * jchunks * block : 0);
  int64_t grain =
      std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(std::min(jstep, n) * block, 1));
  cpu::parallel_for(tasks * jchunks, grain, [&](int64_t t0, int64_t t1) {
    std::vector<double> acc(block);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t task = t / jchunks, jc = t % jchunks;
      int64_t o = task / blocks, i0 = (task % blocks) * block, i1 = std::min(inner, i0 + block), w = i1 - i0;
      int64_t j0 = jc * jstep, j1 = std::min(n, j0 + jstep);
      const T* p = px + o * n * inner + i0;
      if (inner == 1) {
        acc[0] = sum_contiguous(p + j0, j1 - j0);
      } else {
        std::fill(acc.begin(), acc.begin() + w, 0.0);
        for (int64_t j = j0; j < j1; ++j) {
          const T* row = p + j * inner;
          for (int64_t i = 0; i < w; ++i) acc[i] += double(row[i]);
        }
      }
      if (jchunks == 1) {
        for (int64_t i = 0; i < w; ++i) po[o * inner + i0 + i] = static_cast<T>(acc[i]);
      } else {
        std::copy(acc.begin(), acc.begin() + w, partial.begin() + t * block);
      }
    }
  });
  if (jchunks == 1) return;
  cpu::parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      int64_t o = task / blocks, i0 = (task % blocks) * block, w = std::min(inner, i0 + block) - i0;
      for (int64_t i = 0; i < w; ++i) {
        double s = 0;
        for (int64_t jc = 0; jc < jchunks; ++jc) s += partial[(task * jchunks + jc) * block + i];
        po[o * inner + i0 + i] = static_cast<T>(s);
      }
    }
  });
}
}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
                        Tensor* index) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      ref_backend().reduce(op, x, outer, n, inner, out, index);
    } else {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      if (op == ReduceOp::sum) {
        reduce_sum(px, outer, n, inner, po);
        return;
      }
      int64_t* pi = (index && index->defined()) ? index->data<int64_t>() : nullptr;
      bool is_max = op == ReduceOp::max;
      cpu::parallel_for(outer * inner, cpu::row_grain(n), [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
          int64_t o = k / inner, i = k % inner;
          const T* p = px + o * n * inner + i;
          int64_t best = 0;
          for (int64_t j = 1; j < n; ++j) {
            T v = p[j * inner], b = p[best * inner];
            bool better = is_max ? v > b : v < b;
            if (better || (v != v && b == b)) best = j;  // the first NaN wins
          }
          po[k] = n > 0 ? p[best * inner] : T(0);
          if (pi) pi[k] = best;
        }
      });
    }
  });
}

}  // namespace moelab
