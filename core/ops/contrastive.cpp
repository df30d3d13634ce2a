// The symmetric InfoNCE (CLIP) loss with a learnable temperature, and its NegCLIP form with extra text
// negatives, composed from the backend's matmul and softmax kernels, with a hand-written backward that
// reuses the forward's two softmaxes.
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


// The shared body. negatives: (M, D) extra text candidates of the image->text direction, or undefined.
//   L = s * image [text; negatives]^T (N, N + M): the rows' CE over all N + M captions, the columns' CE over
//   the first N columns only (the text->image direction does not see the negatives).
Tensor contrastive_loss_impl(const Tensor& image, const Tensor& text, const Tensor* negatives, const Tensor& log_scale,
                             double max_scale) {
  const char* name = negatives ? "contrastive_loss_with_negatives" : "contrastive_loss";
  if (negatives) {
    detail::backend_of({&image, &text, negatives, &log_scale}, name);
  } else {
    detail::backend_of({&image, &text, &log_scale}, name);
  }
  detail::check_float(image, name);
  detail::check_same_dtype(image, text, name);
  detail::check_same_dtype(image, log_scale, name);
  MOELAB_CHECK(image.dim() == 2 && text.dim() == 2 && image.shape() == text.shape(),
               name << ": image and text must both be (N, D), got " << image.shape().str() << " and "
                    << text.shape().str());
  MOELAB_CHECK(image.size(0) > 0, name << ": needs at least one pair, got N = 0");
  MOELAB_CHECK(log_scale.numel() == 1, name << ": log_scale must hold one value, got " << log_scale.shape().str());
  MOELAB_CHECK(max_scale > 0, name << ": max_scale must be > 0, got " << max_scale);
  if (negatives) {
    detail::check_same_dtype(image, *negatives, name);
    MOELAB_CHECK(negatives->dim() == 2 && negatives->size(0) > 0 && negatives->size(1) == image.size(1),
                 name << ": negatives must be (M, D) with M >= 1 and D = " << image.size(1) << ", got "
                      << negatives->shape().str());
  }
  const int64_t n = image.size(0), m = negatives ? negatives->size(0) : 0;
  Tensor img = image.detach(), txt = text.detach(), ls = log_scale.detach();
  Tensor candidates = negatives ? concat({txt, negatives->detach()}, 0) : txt;  // (N + M, D)
  Tensor out, sim, p_rows, p_cols;
  double s = 0;
  bool clamped = false;
  {
    NoGradGuard ng;
    const double raw = std::exp(ls.item());
    clamped = !(raw < max_scale);
    s = clamped ? max_scale : raw;
    sim = matmul(img, transpose(candidates, 0, 1));             // (N, N + M) cosine similarities
    Tensor logits = mul(sim, s);
    Tensor ls_rows = log_softmax(logits, -1);                     // image -> text, over N + M captions
    Tensor square = m > 0 ? slice(logits, 1, 0, n) : logits;      // (N, N)
    Tensor ls_cols = log_softmax(contiguous(transpose(square, 0, 1)), -1);  // text -> image
    Tensor eye = identity_like(n, img);
    Tensor rows_diag = m > 0 ? slice(ls_rows, 1, 0, n) : ls_rows;
    out = mul(add(sum(mul(rows_diag, eye)), sum(mul(ls_cols, eye))), -0.5 / static_cast<double>(n));
    p_rows = exp(ls_rows);
    p_cols = contiguous(transpose(exp(ls_cols), 0, 1));          // column softmax, in (i, j) layout
  }
  std::vector<Tensor> inputs = {image, text, log_scale};
  if (negatives) inputs.push_back(*negatives);
  record(out, name, inputs,
         [img, candidates, sim, p_rows, p_cols, s, clamped, n, m, shape = log_scale.shape()](const Tensor& g) {
           // dloss/dL = ([P_rows[:, :N] + P_cols - 2I | P_rows[:, N:]]) / (2N)
           Tensor eye = identity_like(n, img);
           Tensor square = m > 0 ? slice(p_rows, 1, 0, n) : p_rows;
           Tensor dl = sub(add(square, p_cols), mul(eye, 2.0));
           if (m > 0) dl = concat({dl, slice(p_rows, 1, n, n + m)}, 1);
           dl = mul(mul(dl, 0.5 / static_cast<double>(n)), g);  // g: 0-d upstream gradient, broadcast
           Tensor g_img = mul(matmul(dl, candidates), s);
           Tensor g_cand = mul(matmul(transpose(dl, 0, 1), img), s);  // (N + M, D)
           // d s / d log_scale = s below the clamp, 0 at it
           Tensor g_ls = clamped ? Tensor::zeros(shape, img.dtype(), img.device())
                                 : reshape(mul(sum(mul(dl, sim)), s), shape);
           if (m == 0) return std::vector<Tensor>{g_img, g_cand, g_ls};
           return std::vector<Tensor>{g_img, contiguous(slice(g_cand, 0, 0, n)), g_ls,
                                      contiguous(slice(g_cand, 0, n, n + m))};
         });
  return out;
}
}  // namespace

// image: (N, D), text: (N, D), log_scale: 0-d or (1) -> 0-d
//   s = min(exp(log_scale), max_scale), L = s * image text^T,
//   loss = (mean_i CE(L[i, :], i) + mean_j CE(L[:, j], j)) / 2.
Tensor contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& log_scale, double max_scale) {
  return contrastive_loss_impl(image, text, nullptr, log_scale, max_scale);
}

// image, text: (N, D), negatives: (M, D), log_scale: 0-d or (1) -> 0-d (NegCLIP's loss)
Tensor contrastive_loss_with_negatives(const Tensor& image, const Tensor& text, const Tensor& negatives,
                                       const Tensor& log_scale, double max_scale) {
  return contrastive_loss_impl(image, text, &negatives, log_scale, max_scale);
}

}  // namespace moelab
