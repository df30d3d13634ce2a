// Losses, each the mean over the elements (rows) it counts: cross_entropy (fused softmax + CE per row,
// label smoothing, ignore_index), mse_loss, huber_loss.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::contiguous_input;
using detail::view_as_shape;

namespace {
// Per-row losses of logits2 (M, C) against target (M): (M), differentiable in logits.
Tensor cross_entropy_rows(const Tensor& logits_in, const Tensor& logits2, const Tensor& target,
                          double smoothing, int64_t ignore_index) {
  int64_t M = logits2.size(0);
  Tensor rows = Tensor::empty(Shape{M}, logits2.dtype(), logits2.device());
  if (M > 0) backend_for(logits2.device()).cross_entropy(logits2, target, smoothing, ignore_index, rows);
  record(rows, "cross_entropy", {logits_in},
         [logits2, target, smoothing, ignore_index, shape = logits_in.shape()](const Tensor& g) {
           Tensor gl = detail::empty_like(logits2);
           if (gl.numel() > 0)
             backend_for(g.device())
                 .cross_entropy_backward(logits2, target, contiguous_input(g), smoothing, ignore_index, gl);
           return std::vector<Tensor>{view_as_shape(gl, shape)};
         });
  return rows;
}
}  // namespace

// logits: (..., C), target: (...) i32/i64 -> 0-d mean over rows whose target is not ignore_index
// (NaN when every row is ignored, as in PyTorch).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing,
                     int64_t ignore_index) {
  detail::backend_of({&logits, &target}, "cross_entropy");
  detail::check_float(logits, "cross_entropy");
  detail::check_index(target, "cross_entropy");
  MOELAB_CHECK(logits.dim() >= 1, "cross_entropy: logits must be (..., C), got a 0-d tensor");
  Shape lead = logits.shape();
  lead.erase(lead.size() - 1);
  MOELAB_CHECK(target.shape() == lead, "cross_entropy: target " << target.shape().str() << " must be "
                                                                << lead.str() << " for logits "
                                                                << logits.shape().str());
  MOELAB_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
               "cross_entropy: label_smoothing must be in [0, 1], got " << label_smoothing);
  int64_t C = logits.size(-1), M = numel_of(lead);
  Tensor l2 = view_as_shape(contiguous_input(logits), Shape{M, C});
  Tensor t = view_as_shape(contiguous_input(target), Shape{M});
  Tensor rows = cross_entropy_rows(logits, l2, t, label_smoothing, ignore_index);
  // counted rows, as a tensor on the logits' device (no host round trip)
  Tensor counted;
  {
    NoGradGuard ng;
    Tensor ignored =
        binary(BinaryOp::eq, t, Tensor::full(Shape{}, double(ignore_index), t.dtype(), t.device()));
    counted = sum(sub(1.0, cast(ignored, logits.dtype())));
  }
  return div(sum(rows), counted);
}

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  detail::check_float(pred, "mse_loss");
  return mean(square(sub(pred, target)));
}

Tensor huber_loss(const Tensor& pred, const Tensor& target, double delta) {
  detail::check_float(pred, "huber_loss");
  MOELAB_CHECK(delta > 0, "huber_loss: delta must be > 0, got " << delta);
  return mean(unary(UnaryOp::huber, sub(pred, target), delta));
}

}  // namespace moelab
