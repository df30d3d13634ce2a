// The symmetric InfoNCE (CLIP) loss with a learnable temperature, composed from the backend's matmul and
// softmax kernels, with a hand-written backward that reuses the forward's two softmaxes.
#include <cmath>

#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

namespace {
// (N, N) identity of x's dtype and device.
Tensor identity_like(int64_t n, const Tensor& x) {
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
  return cast(Tensor::from_vector(v, Shape{n, n}), x.dtype()).to(x.device());
}
}  // namespace

// image: (N, D), text: (N, D), log_scale: 0-d or (1) -> 0-d
//   s = min(exp(log_scale), max_scale), L = s * image text^T,
//   loss = (mean_i CE(L[i, :], i) + mean_j CE(L[:, j], j)) / 2.
Tensor contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& log_scale, double max_scale) {
  detail::backend_of({&image, &text, &log_scale}, "contrastive_loss");
  detail::check_float(image, "contrastive_loss");
  detail::check_same_dtype(image, text, "contrastive_loss");
  detail::check_same_dtype(image, log_scale, "contrastive_loss");
  MOELAB_CHECK(image.dim() == 2 && text.dim() == 2 && image.shape() == text.shape(),
               "contrastive_loss: image and text must both be (N, D), got " << image.shape().str() << " and "
                                                                            << text.shape().str());
  MOELAB_CHECK(image.size(0) > 0, "contrastive_loss: needs at least one pair, got N = 0");
  MOELAB_CHECK(log_scale.numel() == 1, "contrastive_loss: log_scale must hold one value, got "
                                           << log_scale.shape().str());
  MOELAB_CHECK(max_scale > 0, "contrastive_loss: max_scale must be > 0, got " << max_scale);
  const int64_t n = image.size(0);
  Tensor img = image.detach(), txt = text.detach(), ls = log_scale.detach();
  Tensor out, sim, p_rows, p_cols;
  double s = 0;
  bool clamped = false;
  {
    NoGradGuard ng;
    const double raw = std::exp(ls.item());
    clamped = !(raw < max_scale);
    s = clamped ? max_scale : raw;
    sim = matmul(img, transpose(txt, 0, 1));                    // (N, N) cosine similarities
    Tensor logits = mul(sim, s);
    Tensor ls_rows = log_softmax(logits, -1);                     // image -> text
    Tensor ls_cols = log_softmax(contiguous(transpose(logits, 0, 1)), -1);  // text -> image
    Tensor eye = identity_like(n, img);
    out = mul(add(sum(mul(ls_rows, eye)), sum(mul(ls_cols, eye))), -0.5 / static_cast<double>(n));
    p_rows = exp(ls_rows);
    p_cols = contiguous(transpose(exp(ls_cols), 0, 1));          // column softmax, in (i, j) layout
  }
  record(out, "contrastive_loss", {image, text, log_scale},
         [img, txt, sim, p_rows, p_cols, s, clamped, n, shape = log_scale.shape()](const Tensor& g) {
           // dloss/dL = (P_rows - I + P_cols - I) / (2N)
           Tensor eye = identity_like(n, img);
           Tensor dl = mul(sub(add(p_rows, p_cols), mul(eye, 2.0)), 0.5 / static_cast<double>(n));
           dl = mul(dl, g);  // g: 0-d upstream gradient, broadcast
           Tensor g_img = mul(matmul(dl, txt), s);
           Tensor g_txt = mul(matmul(transpose(dl, 0, 1), img), s);
           // d s / d log_scale = s below the clamp, 0 at it
           Tensor g_ls = clamped ? Tensor::zeros(shape, img.dtype(), img.device())
                                 : reshape(mul(sum(mul(dl, sim)), s), shape);
           return std::vector<Tensor>{g_img, g_txt, g_ls};
         });
  return out;
}

}  // namespace moelab
