#pragma once
// Small helpers of image classification on top of the op vocabulary (kept here so that code outside
// core needs no op-level includes for them).
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::vision {

// logits (B, C), labels (B) i64 -> mean cross-entropy (0-d, differentiable), with label smoothing.
Tensor classification_loss(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);
// logits (B, C) -> the arg-max class of each row (ties: the lower class).
std::vector<int64_t> predicted_classes(const Tensor& logits);
// Fraction of rows whose arg-max equals the label (0 for an empty batch).
double batch_accuracy(const Tensor& logits, const Tensor& labels);

}  // namespace moelab::vision
