// ref: reductions over the middle axis of (outer, n, inner), summed in double (int64 for integer data).
#include "core/backend/ref/ref_backend.h"

namespace moelab {

void RefBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
                        Tensor* index) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    int64_t* pi = (index && index->defined()) ? index->data<int64_t>() : nullptr;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = px + o * n * inner + i;
        if (op == ReduceOp::sum) {
          // double for float data, int64 for integer data
          std::conditional_t<std::is_floating_point_v<T>, double, int64_t> acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += p[j * inner];
          po[o * inner + i] = static_cast<T>(acc);
        } else {
          int64_t best = 0;
          for (int64_t j = 1; j < n; ++j) {
            bool better = op == ReduceOp::max ? p[j * inner] > p[best * inner] : p[j * inner] < p[best * inner];
            if (better || (p[j * inner] != p[j * inner] && p[best * inner] == p[best * inner])) best = j;  // NaN wins
          }
          po[o * inner + i] = n > 0 ? p[best * inner] : T(0);
          if (pi) pi[o * inner + i] = best;
        }
      }
  });
}

}  // namespace moelab
