// cpu: reductions over the middle axis of (outer, n, inner). Each output element is reduced by one
// thread in index order, so results do not depend on the thread count.
#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

void CpuBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
                        Tensor* index) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      ref_backend().reduce(op, x, outer, n, inner, out, index);
    } else {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      int64_t* pi = (index && index->defined()) ? index->data<int64_t>() : nullptr;
      int64_t grain = std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(n * inner, 1));
      if (op == ReduceOp::sum) {
        cpu::parallel_for(outer, grain, [&](int64_t o0, int64_t o1) {
          for (int64_t o = o0; o < o1; ++o) {
            const T* p = px + o * n * inner;
            T* q = po + o * inner;
            if (inner == 1) {
              double acc = 0;  // rows are summed in double: long rows stay accurate
              for (int64_t j = 0; j < n; ++j) acc += p[j];
              q[0] = static_cast<T>(acc);
            } else {
              for (int64_t i = 0; i < inner; ++i) q[i] = 0;
              for (int64_t j = 0; j < n; ++j)
                for (int64_t i = 0; i < inner; ++i) q[i] += p[j * inner + i];
            }
          }
        });
      } else {
        bool is_max = op == ReduceOp::max;
        cpu::parallel_for(outer, grain, [&](int64_t o0, int64_t o1) {
          for (int64_t o = o0; o < o1; ++o)
            for (int64_t i = 0; i < inner; ++i) {
              const T* p = px + o * n * inner + i;
              int64_t best = 0;
              for (int64_t j = 1; j < n; ++j) {
                T v = p[j * inner], b = p[best * inner];
                bool better = is_max ? v > b : v < b;
                if (better || (v != v && b == b)) best = j;
              }
              po[o * inner + i] = n > 0 ? p[best * inner] : T(0);
              if (pi) pi[o * inner + i] = best;
            }
        });
      }
    }
  });
}

}  // namespace moelab
