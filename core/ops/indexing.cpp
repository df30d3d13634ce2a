// Indexing: embedding, index_select / index_add (whole rows), gather / scatter_add along a dim, top-k.
// Scatters are deterministic on every backend (Backend::scatter_add, index_add_rows).
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::contiguous_input;
using detail::view_as_shape;

namespace {
int64_t prod(const Shape& s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

// rows of x2 (N, R) at index (M) -> (M, R)
Tensor select_rows(const Tensor& x2, const Tensor& idx) {
  int64_t M = idx.numel(), R = x2.size(1);
  Tensor out = Tensor::empty(Shape{M, R}, x2.dtype(), x2.device());
  if (out.numel() > 0) backend_for(x2.device()).index_select_rows(x2, idx, out);
  return out;
}
// zeros (N, R), then out[idx[m]] += src2[m]
Tensor add_rows(const Tensor& src2, const Tensor& idx, int64_t N) {
  Tensor out = Tensor::zeros(Shape{N, src2.size(1)}, src2.dtype(), src2.device());
  if (src2.numel() > 0) backend_for(src2.device()).index_add_rows(src2, idx, out);
  return out;
}

// The shapes of gather / scatter_add as (outer, n, m, inner) around `dim`.
struct DimSplit {
  int64_t outer, n, m, inner;
};
DimSplit split_at(const Shape& data, const Shape& index, int dim) {
  return {prod(index, 0, dim), data[dim], index[dim], prod(index, dim + 1, index.size())};
}
// x restricted to index's extent in every dim but `dim` (PyTorch lets index be smaller there);
// dim = -1 restricts every dim.
Tensor restrict_to(const Tensor& x, const Shape& index_shape, int dim) {
  Tensor v = x;
  for (int d = 0; d < x.dim(); ++d)
    if (d != dim && index_shape[d] != x.shape()[d]) v = v.slice(d, 0, index_shape[d]);
  return v;
}
// small placed at the origin of a zero tensor of shape `full` (the adjoint of restrict_to).
Tensor pad_to(const Tensor& small, const Shape& full) {
  if (small.shape() == full) return small;
  Tensor z = Tensor::zeros(full, small.dtype(), small.device());
  Tensor dst = z;
  for (int d = 0; d < full.size(); ++d)
    if (small.shape()[d] != full[d]) dst = dst.slice(d, 0, small.shape()[d]);
  dst.copy_(small);
  return z;
}

// out (O, n, I) += src (O, m, I) at index, on contiguous detached tensors
void scatter_into(Tensor& out, const Tensor& idx, const Tensor& src, const DimSplit& s) {
  if (src.numel() > 0) backend_for(out.device()).scatter_add(src, idx, s.outer, s.n, s.m, s.inner, out);
}
Tensor gather_raw(const Tensor& x, const Tensor& idx, const DimSplit& s) {
  Tensor out = Tensor::empty(idx.shape(), x.dtype(), x.device());
  if (out.numel() > 0) backend_for(x.device()).gather(x, idx, s.outer, s.n, s.m, s.inner, out);
  return out;
}
}  // namespace

// rows of x (N, ...) at index (M) -> (M, ...)
Tensor index_select(const Tensor& x_in, const Tensor& index) {
  detail::backend_of({&x_in, &index}, "index_select");
  detail::check_index(index, "index_select");
  MOELAB_CHECK(x_in.dim() >= 1, "index_select: x must have at least 1 dim");
  MOELAB_CHECK(index.dim() == 1, "index_select: index must be 1-D, got " << index.shape().str());
  Tensor x = contiguous_input(x_in), idx = contiguous_input(index);
  int64_t N = x.size(0), R = prod(x.shape(), 1, x.dim());
  Shape os = x.shape();
  os[0] = idx.numel();
  Tensor out = view_as_shape(select_rows(view_as_shape(x, Shape{N, R}), idx), os);
  record(out, "index_select", {x_in}, [idx, N, R, xs = x.shape()](const Tensor& g) {
    Tensor g2 = contiguous_input(g);
    return std::vector<Tensor>{view_as_shape(add_rows(view_as_shape(g2, Shape{idx.numel(), R}), idx, N), xs)};
  });
  return out;
}

// out (num_rows, ...) = zeros, then out[index[m]] += src[m]
Tensor index_add(const Tensor& src_in, const Tensor& index, int64_t num_rows) {
  detail::backend_of({&src_in, &index}, "index_add");
  detail::check_index(index, "index_add");
  MOELAB_CHECK(src_in.dim() >= 1, "index_add: src must have at least 1 dim");
  MOELAB_CHECK(index.dim() == 1 && index.numel() == src_in.size(0),
               "index_add: index must be 1-D with one entry per src row (" << src_in.size(0) << "), got "
                                                                           << index.shape().str());
  MOELAB_CHECK(num_rows >= 0, "index_add: num_rows must be >= 0, got " << num_rows);
  Tensor src = contiguous_input(src_in), idx = contiguous_input(index);
  int64_t M = src.size(0), R = prod(src.shape(), 1, src.dim());
  Shape os = src.shape();
  os[0] = num_rows;
  Tensor out = view_as_shape(add_rows(view_as_shape(src, Shape{M, R}), idx, num_rows), os);
  record(out, "index_add", {src_in}, [idx, M, R, ss = src.shape()](const Tensor& g) {
    Tensor g2 = contiguous_input(g);
    int64_t N = g2.size(0);
    return std::vector<Tensor>{view_as_shape(select_rows(view_as_shape(g2, Shape{N, R}), idx), ss)};
  });
  return out;
}

// weight: (V, D), ids: any shape of i32/i64 -> (*ids.shape, D)
Tensor embedding(const Tensor& weight, const Tensor& ids) {
  MOELAB_CHECK(weight.dim() == 2, "embedding: weight must be (V, D), got " << weight.shape().str());
  detail::check_index(ids, "embedding");
  Shape os = ids.shape();
  os.push_back(weight.size(1));
  return index_select(weight, ids.reshape(Shape{ids.numel()})).reshape(os);
}

// PyTorch gather: out[..., j, ...] = x[..., index[..., j, ...], ...] along dim; out has index's shape.
Tensor gather(const Tensor& x_in, int dim, const Tensor& index) {
  detail::backend_of({&x_in, &index}, "gather");
  detail::check_index(index, "gather");
  MOELAB_CHECK(index.dim() == x_in.dim(), "gather: index " << index.shape().str() << " and x "
                                                           << x_in.shape().str()
                                                           << " must have the same number of dims");
  dim = wrap_dim(dim, x_in.dim(), "gather");
  for (int d = 0; d < x_in.dim(); ++d)
    MOELAB_CHECK(d == dim || index.shape()[d] <= x_in.shape()[d],
                 "gather: index " << index.shape().str() << " is larger than x " << x_in.shape().str()
                                  << " in dim " << d);
  if (x_in.dim() == 0) return gather(x_in.reshape(Shape{1}), 0, index.reshape(Shape{1})).reshape(Shape{});
  Tensor x = contiguous_input(restrict_to(x_in.detach(), index.shape(), dim)), idx = contiguous_input(index);
  DimSplit s = split_at(x.shape(), idx.shape(), dim);
  Tensor out = gather_raw(x, idx, s);
  record(out, "gather", {x_in}, [idx, s, xs = x.shape(), full = x_in.shape()](const Tensor& g) {
    Tensor gx = Tensor::zeros(xs, g.dtype(), g.device());
    scatter_into(gx, idx, contiguous_input(g), s);
    return std::vector<Tensor>{pad_to(gx, full)};
  });
  return out;
}

// PyTorch scatter_add: out = base; out[..., index[..., j, ...], ...] += src[..., j, ...] along dim.
Tensor scatter_add(const Tensor& base_in, int dim, const Tensor& index, const Tensor& src_in) {
  detail::backend_of({&base_in, &index, &src_in}, "scatter_add");
  detail::check_index(index, "scatter_add");
  detail::check_same_dtype(base_in, src_in, "scatter_add");
  MOELAB_CHECK(index.dim() == base_in.dim() && src_in.dim() == base_in.dim(),
               "scatter_add: base " << base_in.shape().str() << ", index " << index.shape().str()
                                    << " and src " << src_in.shape().str()
                                    << " must have the same number of dims");
  dim = wrap_dim(dim, base_in.dim(), "scatter_add");
  for (int d = 0; d < base_in.dim(); ++d) {
    MOELAB_CHECK(index.shape()[d] <= src_in.shape()[d], "scatter_add: index "
                                                            << index.shape().str() << " is larger than src "
                                                            << src_in.shape().str() << " in dim " << d);
    MOELAB_CHECK(d == dim || index.shape()[d] == base_in.shape()[d],
                 "scatter_add: index " << index.shape().str() << " must match base " << base_in.shape().str()
                                       << " in dim " << d << " (every dim but " << dim << ")");
  }
  if (base_in.dim() == 0)
    return scatter_add(base_in.reshape(Shape{1}), 0, index.reshape(Shape{1}), src_in.reshape(Shape{1}))
        .reshape(Shape{});
  Tensor out = base_in.detach().clone();
  Tensor idx = contiguous_input(index);
  Tensor src = contiguous_input(restrict_to(src_in.detach(), index.shape(), -1));
  DimSplit s = split_at(out.shape(), idx.shape(), dim);
  scatter_into(out, idx, src, s);
  record(out, "scatter_add", {base_in, src_in}, [idx, s, src_full = src_in.shape()](const Tensor& g) {
    Tensor gsrc = gather_raw(contiguous_input(g), idx, s);
    return std::vector<Tensor>{g, pad_to(gsrc, src_full)};
  });
  return out;
}

// Top-k along the last dim: values (..., k) differentiable, indices (..., k) i64; ties -> lower index.
Tensor topk(const Tensor& x_in, int64_t k, Tensor* indices) {
  Backend& be = detail::backend_of({&x_in}, "topk");
  detail::check_float(x_in, "topk");
  MOELAB_CHECK(x_in.dim() >= 1, "topk needs at least 1 dim, got a 0-d tensor");
  int64_t N = x_in.size(-1);
  MOELAB_CHECK(k >= 0 && k <= N, "topk: k = " << k << " must be in [0, " << N << "] (the last dim of "
                                              << x_in.shape().str() << ")");
  Tensor x = contiguous_input(x_in);
  int64_t M = N > 0 ? x.numel() / N : 0;
  Shape os = x.shape();
  os[os.size() - 1] = k;
  Tensor values = Tensor::empty(os, x.dtype(), x.device()), idx = Tensor::empty(os, DType::i64, x.device());
  if (values.numel() > 0) {
    Tensor v2 = view_as_shape(values, Shape{M, k}), i2 = view_as_shape(idx, Shape{M, k});
    be.topk(view_as_shape(x, Shape{M, N}), k, v2, i2);
  }
  if (indices) *indices = idx;
  record(values, "topk", {x_in}, [idx, M, N, k, xs = x.shape()](const Tensor& g) {
    Tensor gx = Tensor::zeros(xs, g.dtype(), g.device());
    scatter_into(gx, idx, contiguous_input(g), DimSplit{M, N, k, 1});
    return std::vector<Tensor>{gx};
  });
  return values;
}

}  // namespace moelab
