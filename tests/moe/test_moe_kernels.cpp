// The moe_dispatch kernels: cpu against ref, plan invariants (dropless, capacity, priority), and
// independence of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <numeric>

#include "core/autograd/autograd.h"
#include "core/moe/dispatch.h"
#include "core/ops/ops.h"
#include "core/util/philox.h"
#include "moe/helpers_moe.h"

namespace moelab {
namespace {

using moe::DispatchPlan;
using moe::make_dispatch_plan;

// Random token-choice assignments: k distinct experts per token, skewed toward low expert ids.
std::vector<int64_t> random_assignments(int64_t T, int64_t E, int64_t k, uint64_t seed) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> chosen;
    uint64_t i = 0;
    while (static_cast<int64_t>(chosen.size()) < k) {
      double u = philox::uniform_at(seed, static_cast<uint64_t>(t) * 97 + i++);
      int64_t e = std::min<int64_t>(E - 1, static_cast<int64_t>(u * u * double(E)));
      if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
    }
    out.insert(out.end(), chosen.begin(), chosen.end());
  }
  return out;
}

std::shared_ptr<DispatchPlan> plan_on(BackendKind kind, const std::vector<int64_t>& se, const std::vector<int64_t>& to,
                                      int64_t E, int64_t cap, const Tensor& prio) {
  BackendScope scope(kind);
  return make_dispatch_plan(se, to, E, cap, prio);
}

TEST(MoeKernels, PlanDroplessKeepsEveryAssignmentOnce) {
  int64_t T = 37, E = 6, k = 3;
  auto se = random_assignments(T, E, k, 1);
  auto plan = make_dispatch_plan(se, moe::uniform_token_offsets(T, k), E, -1);
  EXPECT_EQ(plan->num_rows, T * k);
  EXPECT_EQ(plan->dropped, 0);
  std::vector<int64_t> rs = plan->row_slot.to_vector<int64_t>(), sr = plan->slot_row.to_vector<int64_t>();
  std::vector<int64_t> off = plan->expert_offsets.to_vector<int64_t>();
  std::vector<int> seen(static_cast<size_t>(T * k), 0);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = off[e]; r < off[e + 1]; ++r) {
      ++seen[rs[r]];
      EXPECT_EQ(se[rs[r]], e);
      EXPECT_EQ(sr[rs[r]], r);
      if (r > off[e]) {
        EXPECT_LT(rs[r - 1], rs[r]) << "slot order inside an expert";
      }
    }
  for (int c : seen) EXPECT_EQ(c, 1);
}

TEST(MoeKernels, PlanCapacityByPositionAndByPriority) {
  int64_t T = 50, E = 5, k = 2, C = 9;
  auto se = random_assignments(T, E, k, 2);
  Tensor prio = test::randn(Shape{T * k}, 3);
  std::vector<float> pv = prio.to_vector<float>();
  for (bool by_prio : {false, true}) {
    for (BackendKind kind : {BackendKind::ref, BackendKind::cpu}) {
      auto plan = plan_on(kind, se, moe::uniform_token_offsets(T, k), E, C, by_prio ? prio : Tensor());
      std::vector<int64_t> sr = plan->slot_row.to_vector<int64_t>(), counts = plan->counts();
      int64_t naive_dropped = 0;
      for (int64_t e = 0; e < E; ++e) {
        std::vector<int64_t> slots;
        for (int64_t s = 0; s < T * k; ++s)
          if (se[s] == e) slots.push_back(s);
        EXPECT_EQ(counts[e], static_cast<int64_t>(slots.size()));
        naive_dropped += std::max<int64_t>(0, static_cast<int64_t>(slots.size()) - C);
        if (by_prio) std::stable_sort(slots.begin(), slots.end(), [&](int64_t a, int64_t b) { return pv[a] > pv[b]; });
        for (size_t i = 0; i < slots.size(); ++i)
          EXPECT_EQ(sr[slots[i]] >= 0, static_cast<int64_t>(i) < C) << "expert " << e << " slot " << slots[i];
        EXPECT_LE(plan->kept_counts()[e], C);
      }
      EXPECT_EQ(plan->dropped, naive_dropped);
      EXPECT_GT(naive_dropped, 0) << "the example must overflow some expert";
    }
  }
}

struct Case {
  ExpertActivation act;
  bool bias;
  DType dtype;
};

ExpertWeights make_weights(int64_t E, int64_t d, int64_t f, const Case& c, uint64_t seed) {
  ExpertWeights w;
  w.act = c.act;
  w.w1 = test::randn(Shape{E, d, f}, seed, 0.3, c.dtype).requires_grad_();
  w.w2 = test::randn(Shape{E, f, d}, seed + 1, 0.3, c.dtype).requires_grad_();
  if (c.bias) {
    w.b1 = test::randn(Shape{E, f}, seed + 2, 0.3, c.dtype).requires_grad_();
    w.b2 = test::randn(Shape{E, d}, seed + 3, 0.3, c.dtype).requires_grad_();
  }
  if (c.act == ExpertActivation::swiglu) w.w3 = test::randn(Shape{E, d, f}, seed + 4, 0.3, c.dtype).requires_grad_();
  return w;
}

// Runs the fused op forward and backward on one backend; returns output then gradients.
std::vector<Tensor> run_fused(BackendKind kind, const Tensor& x0, const Tensor& w0, const ExpertWeights& ew0,
                              const std::vector<int64_t>& se, int64_t T, int64_t k, int64_t E, int64_t cap) {
  BackendScope scope(kind);
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor w = w0.detach().clone().requires_grad_();
  ExpertWeights ew = ew0;
  for (Tensor* t : {&ew.w1, &ew.b1, &ew.w2, &ew.b2, &ew.w3})
    if (t->defined()) *t = t->detach().clone().requires_grad_();
  auto plan = make_dispatch_plan(se, moe::uniform_token_offsets(T, k), E, cap, w0);
  Tensor y = moe::moe_dispatch_combine(x, w, plan, ew);
  Tensor g = test::randn(y.shape(), 99, 1.0, y.dtype());
  sum(y * g).backward();
  std::vector<Tensor> out{y, x.grad(), w.grad()};
  for (Tensor* t : {&ew.w1, &ew.b1, &ew.w2, &ew.b2, &ew.w3})
    if (t->defined()) out.push_back(t->grad());
  return out;
}

TEST(MoeKernels, FusedDispatchCpuMatchesRef) {
  int64_t T = 41, E = 5, k = 2, d = 12, f = 20;
  auto se = random_assignments(T, E, k, 4);
  for (Case c : {Case{ExpertActivation::gelu, true, DType::f32}, Case{ExpertActivation::relu, false, DType::f32},
                 Case{ExpertActivation::swiglu, true, DType::f64}, Case{ExpertActivation::gelu, false, DType::f64}}) {
    for (int64_t cap : {int64_t(-1), int64_t(10)}) {
      Tensor x = test::randn(Shape{T, d}, 5, 1.0, c.dtype), w = test::randn(Shape{T * k}, 6, 1.0, c.dtype);
      ExpertWeights ew = make_weights(E, d, f, c, 7);
      auto ref = run_fused(BackendKind::ref, x, w, ew, se, T, k, E, cap);
      auto cpu = run_fused(BackendKind::cpu, x, w, ew, se, T, k, E, cap);
      ASSERT_EQ(ref.size(), cpu.size());
      double tol = c.dtype == DType::f32 ? 2e-5 : 1e-12;
      for (size_t i = 0; i < ref.size(); ++i)
        EXPECT_LT(test::max_rel_diff(cpu[i], ref[i]), tol) << "output/gradient " << i << " act " << int(c.act)
                                                           << " capacity " << cap;
    }
  }
}

TEST(MoeKernels, ExpertChoiceSlotsAndEmptyExperts) {
  // Tokens with 0..3 slots and an expert that receives nothing: the CSR path and zero gradients.
  int64_t T = 6, E = 4, d = 5, f = 7;
  std::vector<int64_t> to{0, 0, 3, 4, 4, 6, 7}, se{0, 1, 3, 3, 0, 1, 3};
  Case c{ExpertActivation::gelu, true, DType::f64};
  ExpertWeights ew = make_weights(E, d, f, c, 11);
  Tensor x = test::randn(Shape{T, d}, 12, 1.0, DType::f64), w = test::randn(Shape{7}, 13, 1.0, DType::f64);
  std::vector<std::vector<Tensor>> res;
  for (BackendKind kind : {BackendKind::ref, BackendKind::cpu}) {
    BackendScope scope(kind);
    Tensor xx = x.clone().requires_grad_(), ww = w.clone().requires_grad_();
    ExpertWeights e2 = ew;
    for (Tensor* t : {&e2.w1, &e2.b1, &e2.w2, &e2.b2}) *t = t->detach().clone().requires_grad_();
    auto plan = make_dispatch_plan(se, to, E, -1);
    Tensor y = moe::moe_dispatch_combine(xx, ww, plan, e2);
    sum(y * y).backward();
    res.push_back({y, xx.grad(), ww.grad(), e2.w1.grad(), e2.b2.grad()});
    // Token 0 and token 3 have no slots: zero output. Expert 2 has no rows: zero weight gradient.
    std::vector<double> yv = y.to_vector<double>();
    for (int64_t j = 0; j < d; ++j) {
      EXPECT_EQ(yv[j], 0.0);
      EXPECT_EQ(yv[3 * d + j], 0.0);
    }
    std::vector<double> gw1 = e2.w1.grad().to_vector<double>();
    for (int64_t i = 2 * d * f; i < 3 * d * f; ++i) EXPECT_EQ(gw1[i], 0.0);
  }
  for (size_t i = 0; i < res[0].size(); ++i) EXPECT_LT(test::max_rel_diff(res[1][i], res[0][i]), 1e-12) << i;
}

TEST(MoeKernels, ResultsDoNotDependOnThreadCount) {
  // Many small experts (run in parallel across experts) and two large ones (threaded BLAS per expert).
  struct Shape5 {
    int64_t T, E, k, d, f;
  };
  for (Shape5 sh : {Shape5{300, 16, 2, 32, 48}, Shape5{700, 2, 1, 64, 160}}) {
    auto se = random_assignments(sh.T, sh.E, sh.k, 21);
    Case c{ExpertActivation::swiglu, true, DType::f32};
    ExpertWeights ew = make_weights(sh.E, sh.d, sh.f, c, 22);
    Tensor x = test::randn(Shape{sh.T, sh.d}, 23), w = test::randn(Shape{sh.T * sh.k}, 24);
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    auto one = run_fused(BackendKind::cpu, x, w, ew, se, sh.T, sh.k, sh.E, -1);
    omp_set_num_threads(std::max(2, prev));
    auto many = run_fused(BackendKind::cpu, x, w, ew, se, sh.T, sh.k, sh.E, -1);
    omp_set_num_threads(prev);
    for (size_t i = 0; i < one.size(); ++i) {
      std::vector<float> a = one[i].to_vector<float>(), b = many[i].to_vector<float>();
      EXPECT_TRUE(a == b) << "E = " << sh.E << ": tensor " << i << " differs between 1 and " << std::max(2, prev)
                          << " threads";
    }
  }
}

TEST(MoeKernels, GroupedFfnMatchesPerExpertMatmul) {
  int64_t E = 3, d = 6, f = 9;
  std::vector<int64_t> off{0, 4, 4, 11};
  Case c{ExpertActivation::relu, true, DType::f64};
  ExpertWeights ew = make_weights(E, d, f, c, 31);
  Tensor x = test::randn(Shape{11, d}, 32, 1.0, DType::f64);
  Tensor y = moe::grouped_expert_ffn(x, off, ew);
  for (int64_t e = 0; e < E; ++e) {
    if (off[e + 1] == off[e]) continue;
    Tensor xe = x.slice(0, off[e], off[e + 1]);
    Tensor ref = matmul(relu(matmul(xe, ew.w1.select(0, e)) + ew.b1.select(0, e)), ew.w2.select(0, e)) + ew.b2.select(0, e);
    EXPECT_LT(test::max_rel_diff(y.slice(0, off[e], off[e + 1]), ref), 1e-12) << "expert " << e;
  }
}

TEST(MoeKernels, BadInputsAreReported) {
  EXPECT_THROW(make_dispatch_plan({0, 5}, {0, 2}, 4, -1), Error);          // expert out of range
  EXPECT_THROW(make_dispatch_plan({0, 1}, {0, 1}, 4, -1), Error);          // offsets do not cover the slots
  Case c{ExpertActivation::gelu, false, DType::f32};
  ExpertWeights ew = make_weights(2, 4, 5, c, 1);
  auto plan = make_dispatch_plan({0, 1}, {0, 1, 2}, 2, -1);
  EXPECT_THROW(moe::moe_dispatch_combine(test::randn(Shape{2, 3}, 1), test::randn(Shape{2}, 2), plan, ew), Error);
}

}  // namespace
}  // namespace moelab
