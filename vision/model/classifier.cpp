#include "vision/model/classifier.h"

#include "core/ops/ops.h"

namespace moelab::vision {

Tensor classification_loss(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  MOELAB_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
               "classification_loss: logits " << logits.shape().str() << " and labels " << labels.shape().str()
                                              << " are not (B, C) and (B)");
  return cross_entropy(logits, labels, label_smoothing);
}

std::vector<int64_t> predicted_classes(const Tensor& logits) {
  MOELAB_CHECK(logits.dim() == 2, "predicted_classes: logits " << logits.shape().str() << " are not (B, C)");
  return argmax(logits.detach(), 1).to_vector<int64_t>();
}

double batch_accuracy(const Tensor& logits, const Tensor& labels) {
  std::vector<int64_t> pred = predicted_classes(logits), truth = labels.to_vector<int64_t>();
  MOELAB_CHECK(pred.size() == truth.size(), "batch_accuracy: " << pred.size() << " predictions for " << truth.size()
                                                               << " labels");
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  return pred.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(pred.size());
}

}  // namespace moelab::vision
