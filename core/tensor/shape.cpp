#include "core/tensor/shape.h"

#include <algorithm>

namespace moelab {

std::string Dims::str() const {
  std::string s = "(";
  for (int i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
  if (n_ == 1) s += ",";
  return s + ")";
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st;
  st.resize(s.size());
  int64_t acc = 1;
  for (int i = s.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

int wrap_dim(int dim, int ndim, const char* op) {
  int n = std::max(ndim, 1);
  MOELAB_CHECK(dim >= -n && dim < n, op << ": dim " << dim << " out of range for a " << ndim << "-d tensor");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  int n = std::max(a.size(), b.size());
  Shape out;
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    int ia = a.size() - n + i, ib = b.size() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    MOELAB_CHECK(da == db || da == 1 || db == 1,
                 op << ": shapes " << a.str() << " and " << b.str() << " cannot be broadcast (dim " << i << ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace moelab
