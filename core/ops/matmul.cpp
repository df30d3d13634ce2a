// matmul (PyTorch semantics: 1-D, 2-D, batched with broadcast batch dims) and linear, with backward.
// Products go to the backend as 3-D (B, M, K) x (B|1, K, N) with transpose flags, so transposed
// operands in the backward never need a copy.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::backend_of;

namespace {
// a: (Ba, M, K) [ta: (Ba, K, M)], b: (Bb, K, N) [tb: (Bb, N, K)] -> (B, M, N); Ba, Bb in {B, 1}.
Tensor bmm_raw(const Tensor& a, const Tensor& b, bool ta, bool tb, int64_t B) {
  int64_t M = ta ? a.size(2) : a.size(1), N = tb ? b.size(1) : b.size(2);
  Tensor out = Tensor::empty(Shape{B, M, N}, a.dtype(), a.device());
  if (out.numel() > 0) backend_for(a.device()).matmul(a, b, out, ta, tb, 1.0, 0.0);
  return out;
}
Tensor as3d(const Tensor& x, int64_t b, int64_t r, int64_t c) { return x.contiguous().reshape(Shape{b, r, c}); }
// x: (..., r, c) as a 3-D GEMM operand without a copy when it is the transpose of a contiguous tensor
// (k.transpose(-1, -2) in attention and the transposed operands of the backward): then (b, c, r) with
// transposed = true; otherwise as3d.
Tensor as3d_or_transposed(const Tensor& x, int64_t b, int64_t r, int64_t c, bool& transposed) {
  transposed = false;
  if (x.dim() >= 2 && !x.is_contiguous() && r > 1 && c > 1) {
    Tensor t = x.transpose(-1, -2);
    if (t.is_contiguous()) {
      transposed = true;
      return t.reshape(Shape{b, c, r});
    }
  }
  return as3d(x, b, r, c);
}
}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  backend_of({&a_in, &b_in}, "matmul");
  detail::check_same_dtype(a_in, b_in, "matmul");
  MOELAB_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: 0-d operand");
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  MOELAB_CHECK(b.size(-2) == K, "matmul: inner dimensions differ: " << a_in.shape().str() << " @ "
                                                                    << b_in.shape().str());
  Shape ab, bb;  // batch shapes
  for (int i = 0; i + 2 < a.dim(); ++i) ab.push_back(a.shape()[i]);
  for (int i = 0; i + 2 < b.dim(); ++i) bb.push_back(b.shape()[i]);
  Shape batch = broadcast_shapes(ab, bb, "matmul");
  int64_t B = numel_of(batch);
  Tensor out;
  {
    NoGradGuard ng;
    Tensor a3, b3;
    bool ta = false, tb = false;
    if (bb.size() == 0 || numel_of(bb) == 1) {
      Shape ae = batch;  // b shared by every batch: (1, K, N)
      ae.push_back(M);
      ae.push_back(K);
      a3 = as3d_or_transposed(expand(a, ae), B, M, K, ta);
      b3 = as3d_or_transposed(b, 1, K, N, tb);
    } else {
      Shape ae = batch, be = batch;
      ae.push_back(M); ae.push_back(K);
      be.push_back(K); be.push_back(N);
      a3 = (ab.size() == 0 || numel_of(ab) == 1) && B > 1 ? as3d_or_transposed(a, 1, M, K, ta)
                                                           : as3d_or_transposed(expand(a, ae), B, M, K, ta);
      b3 = as3d_or_transposed(expand(b, be), B, K, N, tb);
    }
    out = bmm_raw(a3, b3, ta, tb, B);
  }
  Shape os = batch;
  if (a_in.dim() > 1) os.push_back(M);
  if (b_in.dim() > 1) os.push_back(N);
  out = out.reshape(os).detach();
  record(out, "matmul", {a_in, b_in}, [a = a.detach(), b = b.detach(), as = a_in.shape(), bs = b_in.shape(),
                                       batch, M, N](const Tensor& g_in) {
    Shape gs = batch;
    gs.push_back(M);
    gs.push_back(N);
    Tensor g = g_in.reshape(gs);
    Tensor ga, gb;
    if (b.dim() == 2 && a.dim() >= 2) {
      // Fold every batch row into one GEMM: ga = g b^T, gb = a^T g.
      int64_t rows = numel_of(batch) * M, K = a.size(-1);
      Tensor g2 = as3d(g, 1, rows, N), a2 = as3d(expand(a, [&] { Shape s = batch; s.push_back(M); s.push_back(K); return s; }()), 1, rows, K);
      ga = bmm_raw(g2, as3d(b, 1, K, N), false, true, 1);
      gb = bmm_raw(a2, g2, true, false, 1).reshape(b.shape());
      Shape ae = batch;
      ae.push_back(M);
      ae.push_back(K);
      ga = sum_to_shape(ga.reshape(ae), a.shape());
    } else {
      ga = sum_to_shape(matmul(g, b.transpose(-1, -2)), a.shape());
      gb = sum_to_shape(matmul(a.transpose(-1, -2), g), b.shape());
    }
    return std::vector<Tensor>{ga.reshape(as), gb.reshape(bs)};
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  backend_of({&x, &weight, &bias}, "linear");
  detail::check_same_dtype(x, weight, "linear");
  MOELAB_CHECK(weight.dim() == 2, "linear: weight must be (out, in), got " << weight.shape().str());
  int64_t in = weight.size(1), outf = weight.size(0);
  MOELAB_CHECK(x.dim() >= 1 && x.size(-1) == in, "linear: input " << x.shape().str() << " does not end in "
                                                                  << in << " (weight " << weight.shape().str()
                                                                  << ")");
  MOELAB_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == outf),
               "linear: bias must be (" << outf << "), got " << bias.shape().str());
  if (bias.defined()) detail::check_same_dtype(x, bias, "linear");
  int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  Tensor x2 = as3d(x.detach(), 1, rows, in), w = as3d(weight.detach(), 1, outf, in);
  Tensor out = bmm_raw(x2, w, false, true, 1);  // (1, rows, out) = x W^T
  if (bias.defined()) {
    NoGradGuard ng;
    Tensor o2 = out.reshape(Shape{rows, outf});
    backend_for(x.device()).binary(BinaryOp::add, o2, expand(bias.detach(), o2.shape()), o2);
  }
  Shape os = x.shape();
  os[os.size() - 1] = outf;
  out = out.reshape(os).detach();
  record(out, "linear", {x, weight, bias}, [x2, w, rows, in, outf, xs = x.shape(), has_bias = bias.defined()](
                                                const Tensor& g) {
    Tensor g2 = as3d(g, 1, rows, outf);
    Tensor gx = bmm_raw(g2, w, false, false, 1).reshape(xs);                  // g W
    Tensor gw = bmm_raw(g2, x2, true, false, 1).reshape(Shape{outf, in});     // g^T x
    Tensor gb = has_bias ? sum(g2.reshape(Shape{rows, outf}), {0}) : Tensor();
    return std::vector<Tensor>{gx, gw, gb};
  });
  return out;
}

}  // namespace moelab
