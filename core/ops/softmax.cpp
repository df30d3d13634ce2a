// Softmax family: softmax, log_softmax and logsumexp over any dim. The dim is moved last (a view), the
// kernels work on (rows, N) and the result is moved back; the causal mask is fused into the kernel.
#include <cmath>

#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::backend_of;
using detail::contiguous_input;
using detail::view_as_shape;

namespace {
// The permutation that moves `dim` to the end, keeping the other dims in order.
std::vector<int> dim_last_order(int dim, int ndim) {
  std::vector<int> p;
  for (int i = 0; i < ndim; ++i)
    if (i != dim) p.push_back(i);
  p.push_back(dim);
  return p;
}
std::vector<int> inverse_order(const std::vector<int>& p) {
  std::vector<int> inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[p[i]] = static_cast<int>(i);
  return inv;
}
}  // namespace

// x: (..., N) -> (..., N)
Tensor detail::softmax_last_dim(const Tensor& x_in, bool log, int64_t causal_tq) {
  const char* name = log ? "log_softmax" : "softmax";
  Backend& be = backend_of({&x_in}, name);
  detail::check_float(x_in, name);
  Tensor x = contiguous_input(x_in);
  int64_t N = x.dim() > 0 ? x.size(-1) : 1, M = N > 0 ? x.numel() / N : 0;
  MOELAB_CHECK(causal_tq >= 0 && (causal_tq == 0 || M % causal_tq == 0),
               name << ": causal mask with " << causal_tq << " queries does not divide " << M << " rows");
  Tensor out = detail::empty_like(x);
  if (x.numel() > 0) {
    Tensor o2 = view_as_shape(out, Shape{M, N});
    be.softmax(view_as_shape(x, Shape{M, N}), o2, log, causal_tq);
  }
  record(out, name, {x_in}, [log, M, N, y = out.detach()](const Tensor& g) {
    Tensor gc = contiguous_input(g), gx = detail::empty_like(y);
    if (gx.numel() > 0) {
      Tensor gx2 = view_as_shape(gx, Shape{M, N});
      backend_for(y.device())
          .softmax_backward(view_as_shape(y, Shape{M, N}), view_as_shape(gc, Shape{M, N}), gx2, log);
    }
    return std::vector<Tensor>{gx};
  });
  return out;
}

namespace {
Tensor softmax_dim(const Tensor& x, int dim, bool log) {
  if (x.dim() == 0) return detail::softmax_last_dim(x, log, 0);
  dim = wrap_dim(dim, x.dim(), log ? "log_softmax" : "softmax");
  if (dim == x.dim() - 1) return detail::softmax_last_dim(x, log, 0);
  std::vector<int> order = dim_last_order(dim, x.dim());
  return detail::softmax_last_dim(x.permute(order), log, 0).permute(inverse_order(order));
}

// logsumexp over the last dim: x (..., N) -> (...)
Tensor logsumexp_last_dim(const Tensor& x_in) {
  Backend& be = backend_of({&x_in}, "logsumexp");
  detail::check_float(x_in, "logsumexp");
  Tensor x = contiguous_input(x_in);
  int64_t N = x.dim() > 0 ? x.size(-1) : 1, M = N > 0 ? x.numel() / N : 0;
  Shape os = x.shape();
  if (os.size() > 0) os.erase(os.size() - 1);
  if (N == 0) M = numel_of(os);
  Tensor out = Tensor::empty(os, x.dtype(), x.device());
  if (N == 0) {
    out.fill_(-INFINITY);  // log of an empty sum
  } else if (M > 0) {
    Tensor o1 = view_as_shape(out, Shape{M});
    be.logsumexp(view_as_shape(x, Shape{M, N}), o1);
  }
  record(out, "logsumexp", {x_in}, [x, lse = out.detach()](const Tensor& g) {
    // d lse / d x = exp(x - lse) = softmax(x)
    Tensor gk = x.dim() > 0 ? g.unsqueeze(-1) : g, lk = x.dim() > 0 ? lse.unsqueeze(-1) : lse;
    return std::vector<Tensor>{mul(gk, exp(sub(x, lk)))};
  });
  return out;
}
}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_dim(x, dim, false); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_dim(x, dim, true); }

Tensor logsumexp(const Tensor& x, int dim, bool keepdim) {
  if (x.dim() == 0) return logsumexp_last_dim(x);
  dim = wrap_dim(dim, x.dim(), "logsumexp");
  Tensor out = dim == x.dim() - 1 ? logsumexp_last_dim(x)
                                  : logsumexp_last_dim(x.permute(dim_last_order(dim, x.dim())));
  return keepdim ? out.unsqueeze(dim) : out;
}

}  // namespace moelab
