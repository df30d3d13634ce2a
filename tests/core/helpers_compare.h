#pragma once
// Comparing a backend's results with the reference: normalized mean squared error over finite positions,
// agreement of NaN/Inf positions, exact equality for integer tensors.
#include <string>

#include "core/tensor/tensor.h"

namespace moelab::test {

// sum((got - ref)^2) / sum(ref^2) over positions finite in both (the plain squared error when ref is 0).
double nmse(const Tensor& got, const Tensor& ref);

// "" when got matches ref: same shape and dtype; the same NaN, +Inf and -Inf positions; NMSE <= max_nmse for
// float tensors and equality for integer ones. Otherwise a message saying what differs and where.
std::string compare_tensors(const Tensor& got, const Tensor& ref, double max_nmse);

}  // namespace moelab::test
