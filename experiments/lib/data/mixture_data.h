#pragma once
// The toy_mixture data: inputs from C well-separated Gaussian clusters, each cluster with its own random
// teacher y = A_c tanh(W_c (x - mu_c) + b_c), so one shared FFN must fit C unrelated functions while an MoE
// layer can give each cluster an expert. Deterministic from (seed, options).
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"
#include "core/util/rng.h"

namespace moelab::experiments {

struct MixtureOptions {
  int64_t clusters = 4, input_dim = 8, output_dim = 4, teacher_hidden = 16;
  double center_radius = 4.0, spread = 1.0;
};

struct MixtureSet {
  Tensor x;                     // (N, input_dim) f32
  Tensor y;                     // (N, output_dim) f32
  std::vector<int64_t> labels;  // (N) cluster ids
};

class MixtureOfFunctions {
 public:
  // Draws the cluster centres and teachers from RngStream(seed, "teacher").
  MixtureOfFunctions(const MixtureOptions& options, uint64_t seed);
  // n examples drawn from `rng`, with Gaussian noise of std `target_noise` on the targets.
  MixtureSet sample(int64_t n, RngStream rng, double target_noise) const;

 private:
  struct Teacher {
    std::vector<double> w, b, a;
  };
  MixtureOptions o_;
  std::vector<double> centers_;
  std::vector<Teacher> teachers_;
};

}  // namespace moelab::experiments
