// The cpu backend's float fast paths (core/kernels/fast_math.h) against double-precision libm over a
// dense sweep of their range and at the special values: exp within 2 ulp, GELU/SiLU/sigmoid and their
// derivatives within a few float roundings of the exact value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/kernels/fast_math.h"

namespace moelab {
namespace {

// |a - b| in units of b's float ulp.
double ulps(float a, double b) {
  double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(b)) - 23);
  return std::abs(double(a) - b) / ulp;
}

TEST(FastMath, ExpWithinTwoUlpOverTheNormalRange) {
  double worst = 0;
  float worst_x = 0, last_x = 0;
  int64_t positives = 0;
  // Every 97th float between -87 (smallest normal result) and 88.7 (largest finite one). A negative
  // float's bits count down towards -0, so the step jumps to +0 once fewer than 97 floats are left
  // (stepping past INT32_MIN was undefined and, wrapped, ended the sweep at a NaN before x = 0).
  for (float x = -87.3f; x < 88.72f;) {
    double u = ulps(kern::exp_f32(x), std::exp(double(x)));
    if (u > worst) worst = u, worst_x = x;
    positives += x > 0;
    last_x = x;
    const int32_t bits = std::bit_cast<int32_t>(x);
    const int32_t magnitude = bits & 0x7fffffff;
    x = x < 0 ? (magnitude > 97 ? std::bit_cast<float>(bits - 97) : 0.0f) : std::bit_cast<float>(x == 0 ? 97 : bits + 97);
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
  // The sweep covered the positive half too.
  EXPECT_GT(positives, 10'000'000);
  EXPECT_GT(last_x, 88.7f);
}

TEST(FastMath, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(kern::exp_f32(0.0f), 1.0f);
  EXPECT_EQ(kern::exp_f32(inf), inf);
  EXPECT_EQ(kern::exp_f32(89.0f), inf);   // e^89 > FLT_MAX
  EXPECT_EQ(kern::exp_f32(-inf), 0.0f);
  EXPECT_EQ(kern::exp_f32(-110.0f), 0.0f);
  EXPECT_TRUE(std::isnan(kern::exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Denormal results: e^-100 = 3.72e-44 is 26.6 times the smallest denormal; within one denormal step.
  float d = kern::exp_f32(-100.0f);
  EXPECT_GT(d, 0.0f);
  EXPECT_NEAR(double(d), std::exp(-100.0), std::numeric_limits<float>::denorm_min());
  // The largest finite result.
  EXPECT_LE(ulps(kern::exp_f32(88.7f), std::exp(double(88.7f))), 2.0);
}

double gelu64(double x) { return 0.5 * x * (1 + std::tanh(kern::kSqrt2OverPi * (x + kern::kGeluCoef * x * x * x))); }
double gelu64_grad(double x) {
  double th = std::tanh(kern::kSqrt2OverPi * (x + kern::kGeluCoef * x * x * x));
  double du = kern::kSqrt2OverPi * (1 + 3 * kern::kGeluCoef * x * x);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
}
double sigmoid64(double x) { return 1 / (1 + std::exp(-x)); }

// Max |f - exact| / max(|exact|, 1) over [-lim, lim] in steps of 1/1024: relative error for large
// values, absolute near the roots of the derivatives (where float cancellation is inherent).
template <typename F, typename Exact>
double max_err(F f, Exact exact, double lim) {
  double worst = 0;
  for (double x = -lim; x <= lim; x += 1.0 / 1024) {
    float xf = static_cast<float>(x);
    double e = exact(double(xf));
    worst = std::max(worst, std::abs(double(f(xf)) - e) / std::max(std::abs(e), 1.0));
  }
  return worst;
}

// The fast path is held to the accuracy of the same formula through float libm (the ref backend's f32
// maths), with a floor of a few float roundings.
template <UnaryOp OP, typename Exact>
void expect_as_accurate_as_libm(Exact value, Exact derivative, double lim) {
  double fast = max_err([](float x) { return kern::fast_unary<OP, float>(x, 0); }, value, lim);
  double libm = max_err([](float x) { return kern::unary<OP, float>(x, 0); }, value, lim);
  EXPECT_LE(fast, std::max(1.5 * libm, 5e-7)) << unary_op_name(OP) << " (libm float: " << libm << ")";
  double dfast = max_err(
      [](float x) { return kern::fast_unary_derivative<OP, float>(x, kern::fast_unary<OP, float>(x, 0), 0); },
      derivative, lim);
  double dlibm = max_err(
      [](float x) { return kern::unary_derivative<OP, float>(x, kern::unary<OP, float>(x, 0), 0); }, derivative,
      lim);
  EXPECT_LE(dfast, std::max(1.5 * dlibm, 5e-7)) << unary_op_name(OP) << "' (libm float: " << dlibm << ")";
}

TEST(FastMath, ActivationsAndDerivativesAsAccurateAsLibm) {
  using F = double (*)(double);
  expect_as_accurate_as_libm<UnaryOp::gelu_tanh>(F(gelu64), F(gelu64_grad), 20);
  expect_as_accurate_as_libm<UnaryOp::sigmoid>(F(sigmoid64), F([](double x) { return sigmoid64(x) * (1 - sigmoid64(x)); }), 30);
  expect_as_accurate_as_libm<UnaryOp::silu>(F([](double x) { return x * sigmoid64(x); }),
                                            F([](double x) { return sigmoid64(x) * (1 + x * (1 - sigmoid64(x))); }),
                                            30);
  using kern::fast_unary;
  using kern::fast_unary_derivative;
  // Far tails: GELU is exactly x for large x and 0 (not NaN) for very negative x, where e^-2u overflows.
  EXPECT_EQ((fast_unary<UnaryOp::gelu_tanh, float>(50.0f, 0)), 50.0f);
  EXPECT_EQ((fast_unary<UnaryOp::gelu_tanh, float>(-50.0f, 0)), 0.0f);
  EXPECT_NEAR((fast_unary_derivative<UnaryOp::gelu_tanh, float>(-50.0f, 0, 0)), 0.0f, 1e-30);
  EXPECT_TRUE(std::isnan(fast_unary<UnaryOp::gelu_tanh, float>(std::numeric_limits<float>::quiet_NaN(), 0)));
}

TEST(FastMath, DoubleFallsThroughToTheSharedFunctions) {
  for (double x : {-3.0, -0.5, 0.0, 0.7, 4.0}) {
    EXPECT_EQ((kern::fast_unary<UnaryOp::gelu_tanh, double>(x, 0)), (kern::unary<UnaryOp::gelu_tanh, double>(x, 0)));
    EXPECT_EQ(kern::fast_exp(x), std::exp(x));
  }
}

}  // namespace
}  // namespace moelab
