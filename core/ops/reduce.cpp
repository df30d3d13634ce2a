// Reductions: sum, mean, max over dims; argmax. Reduced dims are handled one contiguous block at a time
// as (outer, n, inner) views, so no permutation copy is needed.
#include <algorithm>

#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::backend_of;

namespace {
// Reduces one dim of a contiguous x: (outer, n, inner) -> out shape with that dim kept as 1.
Tensor reduce_dim(ReduceOp op, const Tensor& x, int dim, Tensor* index) {
  Shape s = x.shape();
  int64_t outer = 1, inner = 1, n = s[dim];
  for (int i = 0; i < dim; ++i) outer *= s[i];
  for (int i = dim + 1; i < s.size(); ++i) inner *= s[i];
  s[dim] = 1;
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  if (index) *index = Tensor::empty(s, DType::i64, x.device());
  if (out.numel() > 0) {
    MOELAB_CHECK(n > 0 || op == ReduceOp::sum, "max/min over an empty dimension");
    if (n == 0)
      out.fill_(0);
    else
      backend_for(x.device()).reduce(op, x, outer, n, inner, out, index);
  }
  return out;
}

std::vector<int> normalize_dims(std::vector<int> dims, int ndim, const char* op) {
  for (int& d : dims) d = wrap_dim(d, ndim, op);
  std::sort(dims.begin(), dims.end());
  MOELAB_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), op << ": repeated dim");
  return dims;
}

Shape reduced_shape(const Shape& s, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.size(); ++i) {
    bool r = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!r) out.push_back(s[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}
}  // namespace

Tensor sum(const Tensor& x_in, std::vector<int> dims_in, bool keepdim) {
  backend_of({&x_in}, "sum");
  std::vector<int> dims = normalize_dims(dims_in, x_in.dim(), "sum");
  Tensor x = detail::contiguous_input(x_in);
  Tensor acc = x;
  // Merge runs of adjacent reduced dims into one reduction: sum over (a, b) of a contiguous
  // tensor is a single middle-axis reduction of size a*b.
  for (size_t i = 0; i < dims.size();) {
    size_t j = i;
    while (j + 1 < dims.size() && dims[j + 1] == dims[j] + 1) ++j;
    Shape s = acc.shape();
    Shape merged;
    for (int d = 0; d < dims[i]; ++d) merged.push_back(s[d]);
    int64_t m = 1;
    for (size_t k = i; k <= j; ++k) m *= s[dims[k]];
    merged.push_back(m);
    for (int d = dims[j] + 1; d < s.size(); ++d) merged.push_back(s[d]);
    Tensor r = reduce_dim(ReduceOp::sum, Tensor::view_of(acc, merged, contiguous_strides(merged), acc.offset()),
                          dims[i], nullptr);
    Shape back = s;
    for (size_t k = i; k <= j; ++k) back[dims[k]] = 1;
    acc = Tensor::view_of(r, back, contiguous_strides(back), r.offset());
    i = j + 1;
  }
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim);
  Tensor out = Tensor::view_of(acc, out_shape, contiguous_strides(out_shape), acc.offset());
  if (acc.same_storage(x)) out = out.clone();  // nothing was reduced: never alias the input
  Shape in_shape = x.shape(), kept = reduced_shape(x.shape(), dims, true);
  record(out, "sum", {x_in}, [in_shape, kept](const Tensor& g) {
    return std::vector<Tensor>{expand(g.reshape(kept), in_shape).contiguous()};
  });
  return out;
}

Tensor sum(const Tensor& x) {
  std::vector<int> dims(x.dim());
  for (int i = 0; i < x.dim(); ++i) dims[i] = i;
  return sum(x, dims, false);
}

Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim) {
  dims = normalize_dims(dims, x.dim(), "mean");
  int64_t n = 1;
  for (int d : dims) n *= x.shape()[d];
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(std::max<int64_t>(n, 1)));
}

Tensor mean(const Tensor& x) { return mul(sum(x), 1.0 / static_cast<double>(std::max<int64_t>(x.numel(), 1))); }

Tensor max(const Tensor& x_in, int dim, bool keepdim, Tensor* indices) {
  backend_of({&x_in}, "max");
  dim = wrap_dim(dim, x_in.dim(), "max");
  Tensor x = detail::contiguous_input(x_in);
  Tensor idx;
  Tensor out = reduce_dim(ReduceOp::max, x, dim, &idx);
  if (!keepdim) {
    out = out.squeeze(dim);
    idx = idx.squeeze(dim);
  }
  if (indices) *indices = idx;
  Shape in_shape = x.shape();
  record(out, "max", {x_in}, [in_shape, dim, keepdim, idx, dt = x.dtype(), dev = x.device()](const Tensor& g) {
    Tensor gk = keepdim ? g : g.unsqueeze(dim);
    Tensor ik = keepdim ? idx : idx.unsqueeze(dim);
    return std::vector<Tensor>{scatter_add(Tensor::zeros(in_shape, dt, dev), dim, ik, gk.contiguous())};
  });
  return out;
}

Tensor max(const Tensor& x) { return max(x.reshape(Shape{x.numel()}), 0, false); }

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  NoGradGuard ng;
  Tensor idx;
  max(x, dim, keepdim, &idx);
  return idx;
}

}  // namespace moelab
