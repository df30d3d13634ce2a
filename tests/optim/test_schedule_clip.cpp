// Learning-rate schedules and global-norm gradient clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/ops/ops.h"
#include "core/optim/clip.h"
#include "core/optim/schedule.h"
#include "core/util/rng.h"

using namespace moelab;
using namespace moelab::optim;

TEST(Schedule, Constant) {
  LrSchedule s{ScheduleKind::constant, 0.5, 0.0, 0, 0};
  EXPECT_EQ(s.lr_at(0), 0.5);
  EXPECT_EQ(s.lr_at(1000000), 0.5);
  s.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.125);
  EXPECT_DOUBLE_EQ(s.lr_at(3), 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(4), 0.5);
}

TEST(Schedule, WarmupCosine) {
  LrSchedule s{ScheduleKind::cosine, 1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);   // 1/10 of base
  EXPECT_DOUBLE_EQ(s.lr_at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1.0);   // end of warmup
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1.0);  // cosine starts at base
  EXPECT_DOUBLE_EQ(s.lr_at(60), 0.55);  // halfway: min + (base - min) / 2
  EXPECT_DOUBLE_EQ(s.lr_at(35), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)));
  EXPECT_DOUBLE_EQ(s.lr_at(110), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5000), 0.1);
  for (int64_t t = 10; t < 110; ++t) EXPECT_GE(s.lr_at(t), s.lr_at(t + 1)) << t;  // monotone decay
}

TEST(Schedule, LinearAndErrors) {
  LrSchedule s{ScheduleKind::linear, 2.0, 0.0, 0, 100};
  EXPECT_DOUBLE_EQ(s.lr_at(0), 2.0);
  EXPECT_DOUBLE_EQ(s.lr_at(25), 1.5);
  EXPECT_DOUBLE_EQ(s.lr_at(100), 0.0);
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::cosine);
  EXPECT_THROW(parse_schedule_kind("cosin"), Error);
  LrSchedule bad{ScheduleKind::cosine, 1.0, 0.0, 10, 10};
  EXPECT_THROW(bad.lr_at(0), Error);
}

TEST(Clip, ScalesToMaxNormAndReturnsPreClipNorm) {
  Tensor a = Tensor::zeros(Shape{2}).requires_grad_(), b = Tensor::zeros(Shape{1}).requires_grad_();
  Tensor c = Tensor::zeros(Shape{3}).requires_grad_();  // no gradient: ignored
  a.set_grad(Tensor::from_vector<float>({3, 0}, Shape{2}));
  b.set_grad(Tensor::from_vector<float>({4}, Shape{1}));
  EXPECT_DOUBLE_EQ(global_grad_norm({a, b, c}), 5.0);
  double norm = clip_grad_norm({a, b, c}, 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  std::vector<float> ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
  EXPECT_NEAR(ga[0], 0.6, 1e-6);
  EXPECT_NEAR(gb[0], 0.8, 1e-6);
  EXPECT_NEAR(global_grad_norm({a, b}), 1.0, 1e-6);
  // Below the threshold nothing changes.
  double n2 = clip_grad_norm({a, b}, 10.0);
  EXPECT_NEAR(n2, 1.0, 1e-6);
  EXPECT_EQ(a.grad().to_vector<float>(), ga);
  EXPECT_THROW(clip_grad_norm({a}, 0.0), Error);
}

TEST(Clip, SumSquaresCpuMatchesRefOnLargeTensors) {
  RngStream rng(3, "data");
  Tensor x = rand_normal(Shape{300001}, 0.0, 1.0, rng);
  double cpu = cpu_backend().sum_squares(x), ref = ref_backend().sum_squares(x);
  EXPECT_NEAR(cpu, ref, 1e-9 * ref);
  EXPECT_NEAR(ref / 300001, 1.0, 0.02);
  Tensor strided = x.slice(0, 0, 300001, 3);
  EXPECT_NEAR(cpu_backend().sum_squares(strided), ref_backend().sum_squares(strided), 1e-9 * ref);
}
