// ref: batched matmul as a triple loop with double accumulation.
#include "core/backend/ref/ref_backend.h"

namespace moelab {

void RefBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b, double alpha,
                        double beta) {
  // a: (Ba, M, K) [or (Ba, K, M)], b: (Bb, K, N) [or (Bb, N, K)], out: (B, M, N); Ba/Bb are B or 1.
  int64_t B = out.size(0), M = out.size(1), N = out.size(2);
  int64_t K = trans_a ? a.size(1) : a.size(2);
  int64_t sa = a.size(0) == 1 ? 0 : a.size(1) * a.size(2), sb = b.size(0) == 1 ? 0 : b.size(1) * b.size(2);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) {
            double av = trans_a ? pa[bi * sa + k * M + m] : pa[bi * sa + m * K + k];
            double bv = trans_b ? pb[bi * sb + n * K + k] : pb[bi * sb + k * N + n];
            acc += av * bv;
          }
          T& o = po[(bi * M + m) * N + n];
          o = static_cast<T>(alpha * acc + (beta == 0 ? 0.0 : beta * double(o)));
        }
  });
}

}  // namespace moelab
