// conv2d (NCHW): through the backend's convolution library where it has one (cuDNN), else im2col + one
// batched GEMM; backward: col2im of W^T g for x, g cols^T for the weight,
// sums of g for the bias.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::block_view;
using detail::contiguous_input;
using detail::view_as_shape;

// x: (B, C, H, W), weight: (O, C, kh, kw), bias: (O) or undefined -> (B, O, OH, OW)
Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, int64_t stride,
              int64_t padding) {
  Backend& be = detail::backend_of({&x_in, &weight_in, &bias_in}, "conv2d");
  detail::check_float(x_in, "conv2d");
  detail::check_same_dtype(x_in, weight_in, "conv2d");
  MOELAB_CHECK(x_in.dim() == 4, "conv2d: x must be (B, C, H, W), got " << x_in.shape().str());
  MOELAB_CHECK(weight_in.dim() == 4 && weight_in.size(1) == x_in.size(1),
               "conv2d: weight must be (O, " << x_in.size(1) << ", kh, kw) for x " << x_in.shape().str()
                                             << ", got " << weight_in.shape().str());
  MOELAB_CHECK(stride >= 1 && padding >= 0, "conv2d: stride must be >= 1 and padding >= 0, got stride "
                                                << stride << ", padding " << padding);
  int64_t B = x_in.size(0), C = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  int64_t O = weight_in.size(0), kh = weight_in.size(2), kw = weight_in.size(3);
  if (bias_in.defined()) {
    detail::check_same_dtype(x_in, bias_in, "conv2d");
    MOELAB_CHECK(bias_in.dim() == 1 && bias_in.size(0) == O,
                 "conv2d: bias must be (" << O << "), got " << bias_in.shape().str());
  }
  MOELAB_CHECK(H + 2 * padding >= kh && W + 2 * padding >= kw,
               "conv2d: kernel " << kh << "x" << kw << " is larger than the padded input " << H + 2 * padding
                                 << "x" << W + 2 * padding);
  int64_t OH = (H + 2 * padding - kh) / stride + 1, OW = (W + 2 * padding - kw) / stride + 1;
  int64_t L = OH * OW, K = C * kh * kw;
  Tensor x = contiguous_input(x_in), w = contiguous_input(weight_in);
  Tensor w3 = view_as_shape(w, Shape{1, O, K});
  Tensor out = Tensor::empty(Shape{B, O, OH, OW}, x.dtype(), x.device());
  // A backend with a convolution library (cuDNN) runs it whole; the others im2col + GEMM.
  const bool library = out.numel() > 0 && K > 0 && be.conv2d_library(x, w, stride, padding, out);
  // cols: (B, K, L), one im2col per image
  Tensor cols = library ? Tensor() : Tensor::empty(Shape{B, K, L}, x.dtype(), x.device());
  if (!library && cols.numel() > 0)
    for (int64_t b = 0; b < B; ++b) {
      Tensor cb = block_view(cols, b, Shape{K, L});
      be.im2col(block_view(x, b, Shape{C, H, W}), kh, kw, stride, padding, cb);
    }
  Tensor out3 = view_as_shape(out, Shape{B, O, L});
  if (out.numel() > 0) {
    if (!library) {  // (with the library, out holds the convolution already)
      if (K > 0)
        be.matmul(w3, cols, out3, false, false, 1.0, 0.0);
      else
        be.fill(out3, 0.0);
    }
    if (bias_in.defined()) {
      Tensor bias = contiguous_input(bias_in);
      be.binary(BinaryOp::add, out3, Tensor::view_of(bias, Shape{B, O, L}, Strides{0, 1, 0}, bias.offset()),
                out3);
    }
  }
  bool want_x = x_in.requires_grad(), want_w = weight_in.requires_grad();
  record(out, "conv2d", {x_in, weight_in, bias_in},
         [=, cols = want_w ? cols : Tensor(), w3 = want_x ? w3 : Tensor(),
          x_lib = library && want_w ? x : Tensor(), w_lib = library ? w : Tensor(),
          has_bias = bias_in.defined()](const Tensor& g_in) {
           Backend& bk = backend_for(g_in.device());
           Tensor g = contiguous_input(g_in);
           Tensor g3 = view_as_shape(g, Shape{B, O, L});
           Tensor gx, gw, gb;
           if (library) {
             if (want_x) gx = Tensor::empty(Shape{B, C, H, W}, g.dtype(), g.device());
             if (want_w) gw = Tensor::empty(Shape{O, C, kh, kw}, g.dtype(), g.device());
             MOELAB_CHECK(bk.conv2d_library_backward(x_lib, w_lib, g, stride, padding, want_x ? &gx : nullptr,
                                                     want_w ? &gw : nullptr),
                          "conv2d backward: the convolution library of the forward pass is gone");
             if (has_bias) gb = sum(g, {0, 2, 3});
             return std::vector<Tensor>{gx, gw, gb};
           }
           if (want_x) {
             // gcols[b] = W^T g[b]: (K, O) @ (O, L), then scattered back to the image
             Tensor gcols = Tensor::empty(Shape{B, K, L}, g.dtype(), g.device());
             if (gcols.numel() > 0) bk.matmul(w3, g3, gcols, true, false, 1.0, 0.0);
             gx = Tensor::zeros(Shape{B, C, H, W}, g.dtype(), g.device());
             if (gcols.numel() > 0)
               for (int64_t b = 0; b < B; ++b) {
                 Tensor gxb = block_view(gx, b, Shape{C, H, W});
                 bk.col2im(block_view(gcols, b, Shape{K, L}), kh, kw, stride, padding, gxb);
               }
           }
           if (want_w) {
             // gW = sum_b g[b] cols[b]^T: (O, L) @ (L, K), accumulated over the batch
             gw = Tensor::zeros(Shape{O, C, kh, kw}, g.dtype(), g.device());
             Tensor gw3 = view_as_shape(gw, Shape{1, O, K});
             if (L > 0 && gw.numel() > 0)
               for (int64_t b = 0; b < B; ++b)
                 bk.matmul(block_view(g3, b, Shape{1, O, L}), block_view(cols, b, Shape{1, K, L}), gw3, false,
                           true, 1.0, b == 0 ? 0.0 : 1.0);
           }
           if (has_bias) gb = sum(g, {0, 2, 3});
           return std::vector<Tensor>{gx, gw, gb};
         });
  return out;
}

}  // namespace moelab
