#pragma once
// Row maths of the softmax family (softmax, log-softmax, logsumexp, causal masking), shared by the ref,
// cpu and cuda backends. A row is reduced to (max, sum of exp(x - max)); each output element is then a
// function of its input and those two numbers.
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/kernels/hd.h"

namespace moelab::kern {

// Keys kept in row r of a causal (M, n) score matrix: row r is query i = r % tq, keys j <= i + (n - tq).
// tq = 0 keeps every key.
MOELAB_HD int64_t softmax_kept(int64_t row, int64_t n, int64_t tq) {
  if (tq <= 0) return n;
  int64_t last = row % tq + (n - tq);  // the last key this query sees
  return last < 0 ? 0 : (last + 1 < n ? last + 1 : n);
}

// The row's shift: its max, or 0 when the max is infinite (so that x - shift stays a number where it can).
// The max ignores NaN (m = x > m ? x : m); a NaN still reaches the sum and makes the row NaN.
template <typename T>
MOELAB_HD T softmax_shift(T row_max) {
  return std::isinf(row_max) ? T(0) : row_max;
}

// out for one kept element: exp(x - shift) / sum or (x - shift) - log(sum), where sum = sum exp(x - shift).
template <typename T>
MOELAB_HD T softmax_value(T x, T shift, T sum, T log_sum, bool log) {
  return log ? (x - shift) - log_sum : std::exp(x - shift) / sum;
}
// The value of a masked element.
template <typename T>
MOELAB_HD T softmax_masked_value(bool log) {
  return log ? -std::numeric_limits<T>::infinity() : T(0);
}

// gx for one element given y, gy and the row's dot = sum(gy * y) (softmax) or sum(gy) over kept (log).
template <typename T>
MOELAB_HD T softmax_grad(T y, T gy, T dot, bool log) {
  if (log) return std::isinf(y) && y < T(0) ? T(0) : gy - std::exp(y) * dot;
  return y * (gy - dot);
}
// Whether a log-softmax output takes part in the backward row sum (masked entries are -inf).
template <typename T>
MOELAB_HD bool log_softmax_counts(T y) {
  return !(std::isinf(y) && y < T(0));
}

// logsumexp of a row from its max and sum of exp(x - shift) (NaN when the row holds a NaN).
template <typename T>
MOELAB_HD T logsumexp_value(T row_max, T sum) {
  if (sum != sum) return sum;
  if (std::isinf(row_max)) return row_max;  // all -inf -> -inf; any +inf -> +inf
  return row_max + std::log(sum);
}

}  // namespace moelab::kern
