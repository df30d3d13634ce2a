// Autograd: one backward from several roots runs each node once and equals the separate backwards;
// leaf gradients taken without a copy never alias another gradient or the caller's tensor.
#include <gtest/gtest.h>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

using namespace moelab;

namespace {

Tensor leaf(const std::vector<double>& v) { return Tensor::from_vector(v, Shape{int64_t(v.size())}).requires_grad_(); }

// y = x * x through a recorded op that counts how often its backward runs.
Tensor counted_square(const Tensor& x, int& calls) {
  Tensor y;
  {
    NoGradGuard ng;
    y = x * x;
  }
  record(y, "counted_square", {x}, [xd = x.detach(), &calls](const Tensor& g) {
    ++calls;
    return std::vector<Tensor>{g * xd * 2.0};
  });
  return y;
}

}  // namespace

TEST(AutogradRoots, OneBackwardFromTwoRootsRunsSharedNodesOnce) {
  Tensor x = leaf({1.0, -2.0, 3.0});
  int calls = 0;
  Tensor h = counted_square(x, calls);  // shared by both roots
  Tensor y = h * 3.0;                    // root 1, with an output gradient
  Tensor aux = sum(h);                   // root 2, a scalar
  Tensor g = Tensor::from_vector(std::vector<double>{0.5, 1.0, -1.0}, Shape{3});
  run_backward({y, aux}, {g, Tensor()});
  EXPECT_EQ(calls, 1);
  // d/dx [sum(3 h * g) + sum(h)] = (3 g + 1) * 2x
  std::vector<double> got = x.grad().to_vector<double>();
  const std::vector<double> xs = {1.0, -2.0, 3.0}, gs = {0.5, 1.0, -1.0};
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(got[i], (3 * gs[i] + 1) * 2 * xs[i], 1e-6) << i;

  // The same as two separate backwards (each runs the shared node again).
  Tensor x2 = leaf({1.0, -2.0, 3.0});
  int calls2 = 0;
  Tensor h2 = counted_square(x2, calls2);
  (h2 * 3.0).backward(g);
  Tensor h3 = counted_square(x2, calls2);
  sum(h3).backward();
  EXPECT_EQ(calls2, 2);
  std::vector<double> sep = x2.grad().to_vector<double>();
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(got[i], sep[i], 1e-6) << i;
}

TEST(AutogradRoots, RootsMustMatchTheirGradients) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = x * 2.0;
  EXPECT_THROW(run_backward({y}, {}), Error);
  EXPECT_THROW(run_backward({y}, {Tensor()}), Error);  // not a scalar: needs a gradient
  EXPECT_THROW(run_backward({y}, {Tensor::ones(Shape{3})}), Error);
}

TEST(AutogradRoots, LeafGradientsNeverAliasEachOtherOrTheCallersGradient) {
  // add's backward hands the same gradient tensor to both inputs: each leaf must still own its .grad.
  Tensor a = leaf({1.0, 2.0}), b = leaf({3.0, 4.0});
  Tensor g = Tensor::from_vector(std::vector<float>{1.0f, 1.0f}, Shape{2});
  (a + b).backward(g);
  ASSERT_TRUE(a.grad().defined() && b.grad().defined());
  EXPECT_NE(a.grad().storage().get(), b.grad().storage().get());
  EXPECT_NE(a.grad().storage().get(), g.storage().get());
  EXPECT_NE(b.grad().storage().get(), g.storage().get());
  a.grad().fill_(7.0);  // an optimizer changing one gradient in place leaves the others alone
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, 1.0}));

  // A gradient computed for one leaf alone is taken as it is; values stay right over two backwards.
  Tensor c = leaf({1.0, 2.0});
  sum(c * c).backward();
  sum(c * c).backward();
  EXPECT_EQ(c.grad().to_vector<double>(), (std::vector<double>{4.0, 8.0}));
}
