// Batch: size and device moves.
#include "core/nn/batch.h"

namespace moelab::nn {

int64_t Batch::size() const {
  for (const Tensor* t : {&images, &tokens, &features, &targets, &labels})
    if (t->defined() && t->dim() > 0) return t->size(0);
  return 0;
}

Batch Batch::to(Device device) const {
  Batch b = *this;
  for (Tensor* t : {&b.images, &b.tokens, &b.padding_mask, &b.features, &b.targets})
    if (t->defined()) *t = t->to(device);
  return b;
}

}  // namespace moelab::nn
