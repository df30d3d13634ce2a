// Shape ops: views that share storage (reshape, transpose, permute, slice, expand) and copies
// (contiguous, concat, split, cast), each with its backward.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::backend_of;

namespace {
// Strides for viewing `x` as `shape` without copying, or false (PyTorch's computeStride rule).
bool view_strides(const Tensor& x, const Shape& shape, Strides& out) {
  if (x.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  const Shape& os = x.shape();
  const Strides& ost = x.strides();
  out.resize(shape.size());
  int64_t numel = x.numel();
  if (numel == 0) {
    out = contiguous_strides(shape);
    return true;
  }
  int view_d = shape.size() - 1;
  int64_t chunk_base_stride = ost.size() ? ost[ost.size() - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int td = os.size() - 1; td >= 0; --td) {
    tensor_numel *= os[td];
    if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = ost[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_shape(const Shape& in, int64_t numel) {
  Shape s = in;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      MOELAB_CHECK(infer < 0, "reshape: only one dimension can be -1 in " << in.str());
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    MOELAB_CHECK(known > 0 && numel % known == 0, "reshape: cannot infer -1 in " << in.str() << " for " << numel
                                                                                 << " elements");
    s[infer] = numel / known;
  }
  MOELAB_CHECK(numel_of(s) == numel, "reshape: shape " << in.str() << " does not hold " << numel << " elements");
  return s;
}
}  // namespace

Tensor contiguous(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) backend_of({&x}, "contiguous").copy(x, out);
  record(out, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape_in) {
  Shape shape = infer_shape(shape_in, x.numel());
  Strides st;
  Tensor out;
  if (view_strides(x, shape, st)) {
    out = Tensor::view_of(x, shape, st, x.offset());
  } else {
    NoGradGuard ng;  // the copy is part of this op; its backward is recorded below
    Tensor c = contiguous(x);
    out = Tensor::view_of(c, shape, contiguous_strides(shape), c.offset());
  }
  Shape in_shape = x.shape();
  record(out, "reshape", {x}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  MOELAB_CHECK(static_cast<int>(dims.size()) == x.dim(), "permute: " << dims.size() << " dims for a " << x.dim()
                                                                     << "-d tensor");
  Shape s;
  Strides st;
  std::vector<int> inv(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = wrap_dim(dims[i], x.dim(), "permute");
    MOELAB_CHECK(inv[d] < 0, "permute: dim " << d << " repeated");
    inv[d] = static_cast<int>(i);
    s.push_back(x.shape()[d]);
    st.push_back(x.strides()[d]);
  }
  Tensor out = Tensor::view_of(x, s, st, x.offset());
  record(out, "permute", {x}, [inv](const Tensor& g) { return std::vector<Tensor>{g.permute(inv)}; });
  return out;
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  std::vector<int> dims(x.dim());
  for (int i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, x.dim(), "transpose")], dims[wrap_dim(d1, x.dim(), "transpose")]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  dim = wrap_dim(dim, x.dim(), "slice");
  int64_t n = x.shape()[dim];
  MOELAB_CHECK(step >= 1, "slice: step must be >= 1, got " << step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = x.shape();
  Strides st = x.strides();
  s[dim] = (end - start + step - 1) / step;
  st[dim] = x.strides()[dim] * step;
  Tensor out = Tensor::view_of(x, s, st, x.offset() + start * x.strides()[dim]);
  Shape in_shape = x.shape();
  record(out, "slice", {x}, [in_shape, dim, start, end, step, dt = x.dtype(), dev = x.device()](const Tensor& g) {
    Tensor gx = Tensor::zeros(in_shape, dt, dev);
    Tensor dst = slice(gx, dim, start, end, step);
    dst.copy_(g);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape_in) {
  MOELAB_CHECK(shape_in.size() >= x.dim(), "expand: target " << shape_in.str() << " has fewer dims than "
                                                             << x.shape().str());
  int lead = shape_in.size() - x.dim();
  Shape shape = shape_in;  // -1 keeps the input's size (PyTorch)
  for (int i = lead; i < shape.size(); ++i)
    if (shape[i] == -1) shape[i] = x.shape()[i - lead];
  Strides st;
  st.resize(shape.size());
  for (int i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      st[i] = 0;
      continue;
    }
    int64_t d = x.shape()[i - lead];
    MOELAB_CHECK(d == shape[i] || d == 1, "expand: cannot expand " << x.shape().str() << " to " << shape.str());
    st[i] = d == shape[i] ? x.strides()[i - lead] : 0;
  }
  Tensor out = Tensor::view_of(x, shape, st, x.offset());
  Shape in_shape = x.shape();
  record(out, "expand", {x}, [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to_shape(g, in_shape)}; });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  MOELAB_CHECK(!xs.empty(), "concat: no tensors");
  const Tensor& x0 = xs[0];
  dim = wrap_dim(dim, x0.dim(), "concat");
  Shape s = x0.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    MOELAB_CHECK(x.dim() == x0.dim() && x.dtype() == x0.dtype() && x.device() == x0.device(),
                 "concat: tensor " << i << " " << x.shape().str() << " does not match " << x0.shape().str());
    for (int d = 0; d < x.dim(); ++d)
      MOELAB_CHECK(d == dim || x.shape()[d] == s[d], "concat: tensor " << i << " has shape " << x.shape().str()
                                                                       << ", expected " << s.str()
                                                                       << " outside dim " << dim);
    total += x.shape()[dim];
  }
  s[dim] = total;
  Tensor out = Tensor::empty(s, x0.dtype(), x0.device());
  std::vector<int64_t> sizes;
  int64_t at = 0;
  {
    NoGradGuard ng;
    for (auto& x : xs) {
      int64_t n = x.shape()[dim];
      sizes.push_back(n);
      if (n > 0) {
        Tensor dst = slice(out, dim, at, at + n);
        dst.copy_(x);
      }
      at += n;
    }
  }
  record(out, "concat", xs, [sizes, dim](const Tensor& g) { return split(g, sizes, dim); });
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int dim) {
  MOELAB_CHECK(!xs.empty(), "stack: no tensors");
  std::vector<Tensor> us;
  for (auto& x : xs) us.push_back(x.unsqueeze(dim));
  return concat(us, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  MOELAB_CHECK(total == x.shape()[dim], "split: sizes sum to " << total << " but dim " << dim << " has "
                                                               << x.shape()[dim]);
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t n : sizes) {
    parts.push_back(slice(x, dim, at, at + n).contiguous());
    at += n;
  }
  return parts;
}

Tensor cast(const Tensor& x, DType dtype) {
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  if (x.numel() > 0) backend_of({&x}, "cast").copy(x, out);
  if (is_floating(dtype) && is_floating(x.dtype()))
    record(out, "cast", {x}, [src = x.dtype()](const Tensor& g) { return std::vector<Tensor>{cast(g, src)}; });
  return out;
}

}  // namespace moelab
