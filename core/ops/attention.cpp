// Scaled dot-product attention composed from matmul and the fused (causal) softmax; its backward is
// the autograd of those ops.
#include <cmath>

#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

// q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv). With `causal`, query i sees keys
// j <= i + (Tk - Tq) (bottom-right aligned); a query that sees no key gets a zero output row.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    std::optional<double> scale) {
  detail::backend_of({&q, &k, &v}, "scaled_dot_product_attention");
  detail::check_float(q, "scaled_dot_product_attention");
  detail::check_same_dtype(q, k, "scaled_dot_product_attention");
  detail::check_same_dtype(q, v, "scaled_dot_product_attention");
  MOELAB_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
               "scaled_dot_product_attention: q, k, v must be (B, H, T, D), got "
                   << q.shape().str() << ", " << k.shape().str() << ", " << v.shape().str());
  bool ok = k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == q.size(3) &&
            v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == k.size(2);
  MOELAB_CHECK(ok, "scaled_dot_product_attention: shapes do not match: q "
                       << q.shape().str() << ", k " << k.shape().str() << ", v " << v.shape().str());
  int64_t Tq = q.size(2), D = q.size(3);
  double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(D, 1)));
  Tensor scores = matmul(mul(q, s), k.transpose(-1, -2));  // (B, H, Tq, Tk)
  Tensor p = detail::softmax_last_dim(scores, false, causal ? Tq : 0);
  return matmul(p, v);
}

}  // namespace moelab
