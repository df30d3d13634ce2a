// The differentiable collectives (core/dist/dist_ops.h) and the gradient all-reduce (grad_sync.h), on any
// number of ranks: every rank's gradient against a one-process reference (every rank's data rebuilt locally
// and the same loss differentiated by ordinary ops) and against float64 central differences of the global
// loss, perturbing one rank's input at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/autograd/autograd.h"
#include "core/dist/dist_ops.h"
#include "core/dist/grad_sync.h"
#include "tests/dist/dist_testing.h"

namespace moelab::test {
namespace {

using dist::GradOfReplicated;
dist::Communicator& comm() { return dist::world(); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}
Tensor leaf(const Tensor& t) {
  Tensor x = t.clone();
  x.requires_grad_();
  return x;
}

struct Case {
  std::function<Tensor(int r)> x_of;                          // rank r's input (float64)
  std::function<Tensor(const Tensor& x)> distributed;         // this rank's output, through the op
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> reference;  // every rank's output, one process
  bool replicated = false;  // the global loss is rank 0's loss, computed alike on every rank
};

// Rank r's loss from its output: sum(w_r * tanh(y)) with fixed weights w_r.
Tensor loss_of(const Tensor& y, int r) {
  Tensor w = rank_data(99, r, 1, y.numel(), DType::f64).reshape(y.shape());
  return sum(mul(w, tanh(y)));
}

void check_case(const Case& c) {
  const int n = comm().size(), me = comm().rank();
  // distributed gradient of this rank's input
  Tensor x = leaf(c.x_of(me));
  Tensor y = c.distributed(x);
  loss_of(y, c.replicated ? 0 : me).backward();
  ASSERT_TRUE(x.grad().defined()) << "no gradient reached rank " << me << "'s input";
  // one-process reference
  std::vector<Tensor> xs;
  for (int r = 0; r < n; ++r) xs.push_back(leaf(c.x_of(r)));
  std::vector<Tensor> ys = c.reference(xs);
  EXPECT_EQ(max_abs_diff(y, ys[me]), 0.0) << "forward differs from the one-process reference";
  Tensor total = loss_of(ys[0], 0);
  if (!c.replicated)
    for (int r = 1; r < n; ++r) total = add(total, loss_of(ys[r], r));
  total.backward();
  EXPECT_LT(max_abs_diff(x.grad(), xs[me].grad()), 1e-12) << "rank " << me << " gradient vs one-process";
  // central differences of the global loss, one rank's element at a time (every rank evaluates)
  auto global_loss = [&](const Tensor& x_here) {
    NoGradGuard no_grad;
    double l = loss_of(c.distributed(x_here), c.replicated ? 0 : me).item();
    std::vector<double> v{c.replicated && me != 0 ? 0.0 : l};
    comm().all_reduce_sum(v);
    return v[0];
  };
  const double eps = 1e-6;
  Tensor analytic = x.grad().contiguous();
  for (int r = 0; r < n; ++r) {
    std::vector<int64_t> numel{x.numel()};
    comm().broadcast(numel, r);
    for (int64_t e : {int64_t(0), numel[0] / 2, numel[0] - 1}) {
      double lp = 0, lm = 0;
      for (double sign : {1.0, -1.0}) {
        Tensor xp = x.detach().clone();
        if (me == r) xp.data<double>()[e] += sign * eps;
        (sign > 0 ? lp : lm) = global_loss(xp);
      }
      if (me != r) continue;
      const double numeric = (lp - lm) / (2 * eps), a = analytic.data<double>()[e];
      EXPECT_NEAR(a, numeric, 1e-7 * std::max(1.0, std::abs(numeric))) << "rank " << r << " element " << e;
    }
  }
}

TEST(DistOps, AllReduceSumOfRanksLosses) {
  Case c;
  c.x_of = [](int r) { return rank_data(31, r, 4, 5, DType::f64); };
  c.distributed = [](const Tensor& x) { return dist::all_reduce_sum(comm(), x); };
  c.reference = [](const std::vector<Tensor>& xs) {
    Tensor s = xs[0];
    for (size_t r = 1; r < xs.size(); ++r) s = add(s, xs[r]);
    return std::vector<Tensor>(xs.size(), s);
  };
  check_case(c);
}

TEST(DistOps, AllReduceSumReplicatedLoss) {
  Case c;
  c.x_of = [](int r) { return rank_data(32, r, 3, 2, DType::f64); };
  c.distributed = [](const Tensor& x) { return dist::all_reduce_sum(comm(), x, GradOfReplicated::replicated); };
  c.reference = [](const std::vector<Tensor>& xs) {
    Tensor s = xs[0];
    for (size_t r = 1; r < xs.size(); ++r) s = add(s, xs[r]);
    return std::vector<Tensor>(xs.size(), s);
  };
  c.replicated = true;
  check_case(c);
}

std::vector<Tensor> concat_for_all(const std::vector<Tensor>& xs) {
  return std::vector<Tensor>(xs.size(), concat(xs, 0));
}

TEST(DistOps, AllGatherOfRanksLossesReduceScattersTheGradient) {
  Case c;
  c.x_of = [](int r) { return rank_data(33, r, r + 2, 3, DType::f64); };  // rows differ per rank
  c.distributed = [](const Tensor& x) { return dist::all_gather(comm(), x); };
  c.reference = concat_for_all;
  check_case(c);
}

TEST(DistOps, AllGatherReplicatedLossTakesTheOwnRows) {
  Case c;
  c.x_of = [](int r) { return rank_data(34, r, 2, 4, DType::f64); };
  c.distributed = [](const Tensor& x) { return dist::all_gather(comm(), x, GradOfReplicated::replicated); };
  c.reference = concat_for_all;
  c.replicated = true;
  check_case(c);
}

// Rows rank s sends to rank p (zeros included; at least one to itself so every rank receives rows).
int64_t rows_to(int s, int p) { return (3 * s + p) % 3 + (s == p ? 1 : 0); }

TEST(DistOps, AllToAllVBackwardIsTheReverseAllToAll) {
  const int n = comm().size();
  auto send_of = [n](int s) {
    std::vector<int64_t> v(n);
    for (int p = 0; p < n; ++p) v[p] = rows_to(s, p);
    return v;
  };
  auto rows_of = [&](int s) {
    int64_t t = 0;
    for (int64_t v : send_of(s)) t += v;
    return t;
  };
  std::vector<int64_t> send = send_of(comm().rank()), recv = comm().exchange_counts(send);
  Case c;
  c.x_of = [&](int r) { return rank_data(35, r, rows_of(r), 3, DType::f64); };
  c.distributed = [&](const Tensor& x) { return dist::all_to_all_v(comm(), x, send, recv); };
  c.reference = [&](const std::vector<Tensor>& xs) {
    std::vector<Tensor> ys;
    for (int dst = 0; dst < n; ++dst) {
      std::vector<Tensor> parts;
      for (int src = 0; src < n; ++src) {
        int64_t start = 0;
        for (int p = 0; p < dst; ++p) start += rows_to(src, p);
        if (rows_to(src, dst) > 0) parts.push_back(slice(xs[src], 0, start, start + rows_to(src, dst)));
      }
      ys.push_back(concat(parts, 0));
    }
    return ys;
  };
  check_case(c);
}

TEST(GradSync, BucketedAllReduceEqualsTheScaledRankOrderSum) {
  const int n = comm().size(), me = comm().rank();
  const std::vector<Shape> shapes{{3, 4}, {5}, {2, 2, 2}, {7}};
  const std::vector<DType> dtypes{DType::f64, DType::f64, DType::f64, DType::f32};
  auto grad_of = [&](int r, size_t i) {
    if (i == 1 && r == n - 1) return Tensor::zeros(shapes[i], dtypes[i]);  // that rank has no gradient
    return rank_data(40 + i, r, 1, numel_of(shapes[i]), dtypes[i]).reshape(shapes[i]);
  };
  std::vector<Tensor> params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = Tensor::zeros(shapes[i], dtypes[i]);
    if (!(i == 1 && me == n - 1)) p.set_grad(grad_of(me, i).clone());
    params.push_back(p);
  }
  const int64_t handed = dist::all_reduce_gradients(comm(), params, 0.5, /*bucket_bytes=*/64);
  int64_t bytes = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    bytes += numel_of(shapes[i]) * int64_t(dtype_size(dtypes[i]));
    Tensor expected = grad_of(0, i).to(DType::f64).contiguous().clone();
    double* e = expected.data<double>();
    for (int r = 1; r < n; ++r) {
      std::vector<double> g = grad_of(r, i).to_vector<double>();
      for (int64_t k = 0; k < expected.numel(); ++k) {
        if (dtypes[i] == DType::f32) e[k] = double(float(e[k]) + float(g[k]));  // f32 sums round per step
        else e[k] += g[k];
      }
    }
    for (int64_t k = 0; k < expected.numel(); ++k) e[k] *= 0.5;
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(same_bits(params[i].grad(), expected.to(dtypes[i]))) << "parameter " << i << " on rank " << me;
  }
  EXPECT_EQ(handed, bytes);
}

TEST(GradSync, BroadcastParametersCopiesRootsValues) {
  std::vector<Tensor> params{rank_data(50, comm().rank(), 3, 3, DType::f32),
                             rank_data(51, comm().rank(), 1, 8, DType::f64)};
  dist::broadcast_parameters(comm(), params, 0);
  EXPECT_TRUE(same_bits(params[0], rank_data(50, 0, 3, 3, DType::f32)));
  EXPECT_TRUE(same_bits(params[1], rank_data(51, 0, 1, 8, DType::f64)));
}

}  // namespace
}  // namespace moelab::test
