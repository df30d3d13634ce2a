// The mixture-of-functions data: cluster centres, teachers and sampling.
#include "experiments/lib/data/mixture_data.h"

#include <cmath>

namespace moelab::experiments {

MixtureOfFunctions::MixtureOfFunctions(const MixtureOptions& o, uint64_t seed) : o_(o) {
  RngStream rng(seed, "teacher");
  const int64_t h = o.teacher_hidden, in = o.input_dim, out = o.output_dim;
  centers_.assign(o.clusters * in, 0.0);
  for (int64_t c = 0; c < o.clusters; ++c) {
    double norm = 0;
    for (int64_t j = 0; j < in; ++j) norm += std::pow(centers_[c * in + j] = rng.normal(), 2);
    for (int64_t j = 0; j < in; ++j) centers_[c * in + j] *= o.center_radius / std::sqrt(norm);
  }
  for (int64_t c = 0; c < o.clusters; ++c) {
    Teacher t;
    t.w.resize(h * in);
    t.b.resize(h);
    t.a.resize(out * h);
    // Inputs are centred on their cluster before the teacher sees them, so every function varies over its
    // own cluster (rather than saturating far from the origin).
    for (auto& v : t.w) v = rng.normal() * 1.5 / (o.spread * std::sqrt(static_cast<double>(in)));
    for (auto& v : t.b) v = rng.normal() * 0.5;
    for (auto& v : t.a) v = rng.normal() * 1.5 / std::sqrt(static_cast<double>(h));
    teachers_.push_back(std::move(t));
  }
}

MixtureSet MixtureOfFunctions::sample(int64_t n, RngStream rng, double target_noise) const {
  const int64_t in = o_.input_dim, out = o_.output_dim, h = o_.teacher_hidden;
  std::vector<float> xs(n * in), ys(n * out);
  MixtureSet d;
  d.labels.resize(n);
  std::vector<double> centred(in), hidden(h);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng.below(static_cast<uint64_t>(o_.clusters)));
    d.labels[i] = c;
    for (int64_t j = 0; j < in; ++j) {
      centred[j] = o_.spread * rng.normal();
      xs[i * in + j] = static_cast<float>(centers_[c * in + j] + centred[j]);
    }
    const Teacher& t = teachers_[c];
    for (int64_t k = 0; k < h; ++k) {
      double z = t.b[k];
      for (int64_t j = 0; j < in; ++j) z += t.w[k * in + j] * centred[j];
      hidden[k] = std::tanh(z);
    }
    for (int64_t o = 0; o < out; ++o) {
      double v = 0;
      for (int64_t k = 0; k < h; ++k) v += t.a[o * h + k] * hidden[k];
      if (target_noise > 0) v += target_noise * rng.normal();
      ys[i * out + o] = static_cast<float>(v);
    }
  }
  d.x = Tensor::from_vector(xs, Shape{n, in});
  d.y = Tensor::from_vector(ys, Shape{n, out});
  return d;
}

}  // namespace moelab::experiments
