#pragma once
// Host-side float exp, GELU, SiLU and sigmoid without libm calls, so the cpu backend's loops vectorize;
// the op tests hold them to ref's std:: maths. Why and how close: docs/ops.md (Fast maths).
#include <bit>
#include <cstdint>
#include <type_traits>

#include "core/kernels/elementwise.h"

namespace moelab::kern {

// e^x for float: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), e^r by its degree-7 Taylor
// polynomial (truncation < 1e-8 relative), times 2^n applied as two halves so that overflow gives inf and
// underflow gives denormals or 0 exactly as the hardware rounds them. NaN stays NaN.
inline float exp_f32(float x) {
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  const float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer (|n| < 2^22)
  float nf = (xc * kLog2e + kRound) - kRound;
  float r = (xc - nf * kLn2Hi) - nf * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t n = static_cast<int32_t>(nf);  // in [-150, 129]
  int32_t n1 = n / 2, n2 = n - n1;        // each in [-75, 65]: a normal power of two
  float s1 = std::bit_cast<float>((n1 + 127) << 23), s2 = std::bit_cast<float>((n2 + 127) << 23);
  float y = p * s1 * s2;
  return x != x ? x : y;
}

inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u): the same function without tanh's cancellation.
inline float gelu_tanh_gate_f32(float x) {
  float u = float(kSqrt2OverPi) * (x + float(kGeluCoef) * x * x * x);
  return sigmoid_f32(2.0f * u);
}

// Whether the cpu backend has a float fast path for OP.
template <UnaryOp OP>
constexpr bool has_fast_f32 =
    OP == UnaryOp::exp || OP == UnaryOp::sigmoid || OP == UnaryOp::gelu_tanh || OP == UnaryOp::silu;

// unary<OP, T> with the float fast paths above.
template <UnaryOp OP, typename T>
inline T fast_unary(T x, T alpha) {
  if constexpr (std::is_same_v<T, float> && has_fast_f32<OP>) {
    if constexpr (OP == UnaryOp::exp) return exp_f32(x);
    else if constexpr (OP == UnaryOp::sigmoid) return sigmoid_f32(x);
    else if constexpr (OP == UnaryOp::gelu_tanh) return x * gelu_tanh_gate_f32(x);
    else return x * sigmoid_f32(x);  // silu
  } else {
    return unary<OP, T>(x, alpha);
  }
}

// unary_derivative<OP, T> with the float fast paths above.
template <UnaryOp OP, typename T>
inline T fast_unary_derivative(T x, T y, T alpha) {
  if constexpr (std::is_same_v<T, float> && OP == UnaryOp::gelu_tanh) {
    // d/dx [x s(x)] with s = sigmoid(2u) = 1 / (1 + e), e = e^-2u: s + 2 x s (1 - s) u', where 1 - s = e s
    // is taken without cancellation (e is kept finite so that e s stays a number in the far left tail).
    float u = float(kSqrt2OverPi) * (x + float(kGeluCoef) * x * x * x);
    float m2u = -2.0f * u;
    float e = exp_f32(m2u < 88.0f ? m2u : 88.0f);
    float s = 1.0f / (1.0f + e);
    float du = float(kSqrt2OverPi) * (1.0f + float(3 * kGeluCoef) * x * x);
    float d = s + 2.0f * x * s * (e * s) * du;
    return x - x == 0.0f ? d : x - x;  // NaN at +-inf and NaN, as the shared formula gives
  } else if constexpr (std::is_same_v<T, float> && OP == UnaryOp::silu) {
    float s = sigmoid_f32(x);
    return s * (1.0f + x * (1.0f - s));
  } else {
    return unary_derivative<OP, T>(x, y, alpha);
  }
}

// exp for the softmax rows: the fast path for float, std::exp otherwise.
template <typename T>
inline T fast_exp(T x) {
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
  else return std::exp(x);
}

}  // namespace moelab::kern
