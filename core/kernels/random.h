#pragma once
// Per-element transforms of Philox draws (core/util/philox.h), shared by every backend.
#include <cmath>

#include "core/kernels/hd.h"

namespace moelab::kern {

// lo + (hi - lo) u in T, kept below hi when rounding to T lands on it.
template <typename T>
MOELAB_HD T uniform_value(double u, double lo, double hi) {
  T v = static_cast<T>(lo + (hi - lo) * u);
  T top = static_cast<T>(hi);
  return (v >= top && hi > lo) ? std::nextafter(top, static_cast<T>(lo)) : v;
}

template <typename T>
MOELAB_HD T normal_value(double z, double mean, double std) {
  return static_cast<T>(mean + std * z);
}

// Inverted dropout: kept elements are scaled by 1 / (1 - p) so the expectation is unchanged.
template <typename T>
MOELAB_HD T dropout_value(double u, double p) {
  return u >= p ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
}

}  // namespace moelab::kern
