#pragma once
// Per-element maths shared by the ref, cpu and cuda backends: forward values and derivatives.
// Each op is a compile-time tag so the loops that call these stay branch-free and vectorizable.
#include <cmath>
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab {

enum class UnaryOp : uint8_t {
  copy, neg, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, gelu_tanh, gelu_erf, silu, abs, square,
  softplus,
  add_scalar,   // x + alpha
  mul_scalar,   // x * alpha
  pow_scalar,   // x ^ alpha
  rsub_scalar,  // alpha - x
  rdiv_scalar,  // alpha / x
  huber,        // 0.5 x^2 if |x| <= alpha else alpha (|x| - 0.5 alpha)
  leaky_relu,   // x > 0 ? x : alpha x
  clamp_min,    // max(x, alpha)
  count_
};
// eq and gt return 1 or 0 (masks; not differentiable).
enum class BinaryOp : uint8_t { add, sub, mul, div, maximum, minimum, eq, gt, count_ };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

namespace kern {

template <typename T> MOELAB_HD T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T> MOELAB_HD T softplus(T x) {
  // log(1 + e^x) without overflow: max(x,0) + log1p(e^-|x|)
  return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::abs(x)));
}
constexpr double kSqrt2OverPi = 0.7978845608028654, kGeluCoef = 0.044715, kInvSqrt2 = 0.7071067811865476,
                 kInvSqrt2Pi = 0.3989422804014327;

template <UnaryOp OP, typename T> MOELAB_HD T unary(T x, T alpha) {
  if constexpr (OP == UnaryOp::copy) return x;
  else if constexpr (OP == UnaryOp::neg) return -x;
  else if constexpr (OP == UnaryOp::exp) return std::exp(x);
  else if constexpr (OP == UnaryOp::log) return std::log(x);
  else if constexpr (OP == UnaryOp::sqrt) return std::sqrt(x);
  else if constexpr (OP == UnaryOp::rsqrt) return T(1) / std::sqrt(x);
  else if constexpr (OP == UnaryOp::tanh) return std::tanh(x);
  else if constexpr (OP == UnaryOp::sigmoid) return sigmoid(x);
  else if constexpr (OP == UnaryOp::relu) return x > T(0) ? x : T(0);
  else if constexpr (OP == UnaryOp::gelu_tanh)
    return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(kGeluCoef) * x * x * x)));
  else if constexpr (OP == UnaryOp::gelu_erf) return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
  else if constexpr (OP == UnaryOp::silu) return x * sigmoid(x);
  else if constexpr (OP == UnaryOp::abs) return std::abs(x);
  else if constexpr (OP == UnaryOp::square) return x * x;
  else if constexpr (OP == UnaryOp::softplus) return softplus(x);
  else if constexpr (OP == UnaryOp::add_scalar) return x + alpha;
  else if constexpr (OP == UnaryOp::mul_scalar) return x * alpha;
  else if constexpr (OP == UnaryOp::pow_scalar) return std::pow(x, alpha);
  else if constexpr (OP == UnaryOp::rsub_scalar) return alpha - x;
  else if constexpr (OP == UnaryOp::rdiv_scalar) return alpha / x;
  else if constexpr (OP == UnaryOp::huber) {
    T a = std::abs(x);
    return a <= alpha ? T(0.5) * x * x : alpha * (a - T(0.5) * alpha);
  } else if constexpr (OP == UnaryOp::leaky_relu) return x > T(0) ? x : alpha * x;
  else if constexpr (OP == UnaryOp::clamp_min) return x > alpha ? x : alpha;
  else return x;
}

// d unary(x) / dx, given x and y = unary(x) (some derivatives are cheaper from y).
template <UnaryOp OP, typename T> MOELAB_HD T unary_derivative(T x, T y, T alpha) {
  if constexpr (OP == UnaryOp::copy) return T(1);
  else if constexpr (OP == UnaryOp::neg) return T(-1);
  else if constexpr (OP == UnaryOp::exp) return y;
  else if constexpr (OP == UnaryOp::log) return T(1) / x;
  else if constexpr (OP == UnaryOp::sqrt) return T(0.5) / y;
  else if constexpr (OP == UnaryOp::rsqrt) return T(-0.5) * y * y * y;
  else if constexpr (OP == UnaryOp::tanh) return T(1) - y * y;
  else if constexpr (OP == UnaryOp::sigmoid) return y * (T(1) - y);
  else if constexpr (OP == UnaryOp::relu) return x > T(0) ? T(1) : T(0);
  else if constexpr (OP == UnaryOp::gelu_tanh) {
    T u = T(kSqrt2OverPi) * (x + T(kGeluCoef) * x * x * x);
    T th = std::tanh(u);
    T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCoef) * x * x);
    return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
  } else if constexpr (OP == UnaryOp::gelu_erf)
    return T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2))) + x * T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
  else if constexpr (OP == UnaryOp::silu) {
    T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  } else if constexpr (OP == UnaryOp::abs) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else if constexpr (OP == UnaryOp::square) return T(2) * x;
  else if constexpr (OP == UnaryOp::softplus) return sigmoid(x);
  else if constexpr (OP == UnaryOp::add_scalar) return T(1);
  else if constexpr (OP == UnaryOp::mul_scalar) return alpha;
  else if constexpr (OP == UnaryOp::pow_scalar) return alpha * std::pow(x, alpha - T(1));
  else if constexpr (OP == UnaryOp::rsub_scalar) return T(-1);
  else if constexpr (OP == UnaryOp::rdiv_scalar) return -alpha / (x * x);
  else if constexpr (OP == UnaryOp::huber) return std::abs(x) <= alpha ? x : (x > T(0) ? alpha : -alpha);
  else if constexpr (OP == UnaryOp::leaky_relu) return x > T(0) ? T(1) : alpha;
  else if constexpr (OP == UnaryOp::clamp_min) return x > alpha ? T(1) : T(0);
  else return T(1);
}

template <BinaryOp OP, typename T> MOELAB_HD T binary(T a, T b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  else if constexpr (OP == BinaryOp::sub) return a - b;
  else if constexpr (OP == BinaryOp::mul) return a * b;
  else if constexpr (OP == BinaryOp::div) return a / b;
  else if constexpr (OP == BinaryOp::maximum) return a > b ? a : b;
  else if constexpr (OP == BinaryOp::minimum) return a < b ? a : b;
  else if constexpr (OP == BinaryOp::eq) return a == b ? T(1) : T(0);
  else return a > b ? T(1) : T(0);
}

}  // namespace kern

// Calls f.template operator()<OP>() for the runtime op (dispatch once, outside the loop).
template <typename F> void dispatch_unary(UnaryOp op, F&& f) {
#define MOELAB_U(name) \
  case UnaryOp::name: f.template operator()<UnaryOp::name>(); return;
  switch (op) {
    MOELAB_U(copy) MOELAB_U(neg) MOELAB_U(exp) MOELAB_U(log) MOELAB_U(sqrt) MOELAB_U(rsqrt) MOELAB_U(tanh)
    MOELAB_U(sigmoid) MOELAB_U(relu) MOELAB_U(gelu_tanh) MOELAB_U(gelu_erf) MOELAB_U(silu) MOELAB_U(abs)
    MOELAB_U(square) MOELAB_U(softplus) MOELAB_U(add_scalar) MOELAB_U(mul_scalar) MOELAB_U(pow_scalar)
    MOELAB_U(rsub_scalar) MOELAB_U(rdiv_scalar) MOELAB_U(huber) MOELAB_U(leaky_relu) MOELAB_U(clamp_min)
    case UnaryOp::count_: break;
  }
#undef MOELAB_U
}
template <typename F> void dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::add: f.template operator()<BinaryOp::add>(); return;
    case BinaryOp::sub: f.template operator()<BinaryOp::sub>(); return;
    case BinaryOp::mul: f.template operator()<BinaryOp::mul>(); return;
    case BinaryOp::div: f.template operator()<BinaryOp::div>(); return;
    case BinaryOp::maximum: f.template operator()<BinaryOp::maximum>(); return;
    case BinaryOp::minimum: f.template operator()<BinaryOp::minimum>(); return;
    case BinaryOp::eq: f.template operator()<BinaryOp::eq>(); return;
    case BinaryOp::gt: f.template operator()<BinaryOp::gt>(); return;
    case BinaryOp::count_: break;
  }
}

}  // namespace moelab
