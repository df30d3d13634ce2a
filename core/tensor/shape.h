#pragma once
// Shape and strides: small inline arrays (no heap) so that creating a tensor stays cheap.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/util/check.h"

namespace moelab {

constexpr int kMaxDims = 8;

class Dims {
 public:
  Dims() = default;
  Dims(std::initializer_list<int64_t> v) { assign(v.begin(), v.end()); }
  explicit Dims(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }
  template <typename It> Dims(It b, It e) { assign(b, e); }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int i) { return d_[i]; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t back() const { return d_[n_ - 1]; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }
  void push_back(int64_t v) {
    MOELAB_CHECK(n_ < kMaxDims, "tensors have at most " << kMaxDims << " dimensions");
    d_[n_++] = v;
  }
  void insert(int pos, int64_t v) {
    push_back(0);
    for (int i = n_ - 1; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
    --n_;
  }
  void resize(int n, int64_t fill = 0) {
    MOELAB_CHECK(n <= kMaxDims, "tensors have at most " << kMaxDims << " dimensions");
    for (int i = n_; i < n; ++i) d_[i] = fill;
    n_ = n;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  bool operator==(const Dims& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  bool operator!=(const Dims& o) const { return !(*this == o); }
  std::string str() const;  // "(2, 3, 4)"

 private:
  template <typename It> void assign(It b, It e) {
    n_ = 0;
    for (; b != e; ++b) push_back(static_cast<int64_t>(*b));
  }
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

using Shape = Dims;
using Strides = Dims;

int64_t numel_of(const Shape& s);
Strides contiguous_strides(const Shape& s);
// Normalizes a possibly negative dim index; error names the op.
int wrap_dim(int dim, int ndim, const char* op);
// Broadcast two shapes by NumPy/PyTorch rules; error names both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace moelab
