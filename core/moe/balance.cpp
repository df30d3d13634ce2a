// Balancing terms (docs/moe.md §2), built from generic differentiable ops.
#include "core/moe/balance.h"

#include <cmath>
#include <limits>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {
Tensor constant_like(const std::vector<double>& v, const Shape& shape, const Tensor& like) {
  return Tensor::from_vector(v, shape, like.device()).to(like.dtype());
}
}  // namespace

Tensor switch_balance_loss(const Tensor& probs, const std::vector<double>& counts, double count_tokens, int64_t k) {
  MOELAB_CHECK(probs.dim() == 2 && static_cast<int64_t>(counts.size()) == probs.size(1),
               "switch_balance_loss: probs " << probs.shape().str() << " and " << counts.size() << " counts");
  int64_t E = probs.size(1);
  std::vector<double> f(counts.size());
  for (size_t i = 0; i < counts.size(); ++i)
    f[i] = count_tokens > 0 ? counts[i] / (static_cast<double>(k) * count_tokens) : 0.0;
  Tensor P = mean(probs, {0});
  return mul(sum(P * constant_like(f, Shape{E}, probs)), static_cast<double>(E));
}

Tensor switch_balance_loss_per_sequence(const Tensor& probs, const std::vector<double>& seq_counts, int64_t B,
                                        int64_t k) {
  MOELAB_CHECK(probs.dim() == 2 && B >= 1 && probs.size(0) % B == 0 &&
                   static_cast<int64_t>(seq_counts.size()) == B * probs.size(1),
               "switch_balance_loss_per_sequence: probs " << probs.shape().str() << ", " << B << " sequences, "
                                                          << seq_counts.size() << " counts");
  int64_t E = probs.size(1), N = probs.size(0) / B;
  std::vector<double> f(seq_counts.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = N > 0 ? seq_counts[i] / (static_cast<double>(k) * double(N)) : 0.0;
  Tensor P = mean(probs.reshape(Shape{B, N, E}), {1});  // (B, E)
  return mul(sum(P * constant_like(f, Shape{B, E}, probs)), static_cast<double>(E) / static_cast<double>(B));
}

Tensor cv_squared(const Tensor& v) {
  Tensor m = mean(v);
  Tensor var = mean(square(v - m));
  return var / add(square(m), 1e-10);
}

Tensor importance_loss(const Tensor& gates) { return cv_squared(sum(gates, {0})); }

Tensor normal_cdf(const Tensor& x_in) {
  Tensor x = x_in.detach().contiguous();
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = 0.5 * std::erfc(-v[i] / std::sqrt(2.0));
  Tensor y = Tensor::from_vector(out, x.shape(), x.device()).to(x.dtype());
  record(y, "normal_cdf", {x_in}, [x](const Tensor& g) {
    std::vector<double> v = x.to_vector<double>(), d(v.size());
    for (size_t i = 0; i < v.size(); ++i) d[i] = std::exp(-0.5 * v[i] * v[i]) / std::sqrt(2.0 * M_PI);
    return std::vector<Tensor>{g * Tensor::from_vector(d, x.shape(), x.device()).to(x.dtype())};
  });
  return y;
}

Tensor load_loss(const Tensor& clean, const Tensor& noisy, const Tensor& sigma, const std::vector<uint8_t>& selected) {
  MOELAB_CHECK(clean.dim() == 2 && noisy.shape() == clean.shape() && sigma.shape() == clean.shape() &&
                   static_cast<int64_t>(selected.size()) == clean.numel(),
               "load_loss: clean, noisy, sigma must be (T, E) with a (T*E) selection mask");
  int64_t T = clean.size(0), E = clean.size(1);
  std::vector<double> nz = noisy.to_vector<double>();
  // Threshold index per (t, i) into the flattened noisy logits; -1 where there is no threshold.
  std::vector<int64_t> idx(static_cast<size_t>(T * E));
  std::vector<double> has(static_cast<size_t>(T * E), 1.0);
  for (int64_t t = 0; t < T; ++t) {
    int64_t min_sel = -1, max_unsel = -1;
    for (int64_t e = 0; e < E; ++e) {
      int64_t j = t * E + e;
      if (selected[j]) {
        if (min_sel < 0 || nz[j] < nz[min_sel]) min_sel = j;
      } else if (max_unsel < 0 || nz[j] > nz[max_unsel]) {
        max_unsel = j;
      }
    }
    for (int64_t e = 0; e < E; ++e) {
      int64_t j = t * E + e;
      int64_t th = selected[j] ? max_unsel : min_sel;
      idx[j] = th >= 0 ? th : j;
      if (th < 0) has[j] = 0.0;  // no competitor: the expert is always in the top-k, Phi = 1
    }
  }
  Tensor thr = gather(noisy.reshape(Shape{T * E}), 0, Tensor::from_vector(idx, Shape{T * E}, noisy.device())).reshape(Shape{T, E});
  Tensor mask = constant_like(has, Shape{T, E}, clean);
  // Where there is no threshold use a large positive argument (Phi = 1, zero gradient).
  Tensor arg = ((clean - thr) / sigma) * mask + (1.0 - mask) * 40.0;
  Tensor load = sum(normal_cdf(arg), {0});
  return cv_squared(load);
}

Tensor router_z_loss(const Tensor& logits) { return mean(square(logsumexp(logits, -1))); }

namespace {
Tensor row_entropy(const Tensor& p) {
  double tiny = p.dtype() == DType::f64 ? 1e-300 : 1e-30;
  return neg(sum(p * log(clamp_min(p, tiny)), {-1}));
}
}  // namespace

Tensor local_entropy(const Tensor& probs) { return mean(row_entropy(probs)); }

Tensor global_entropy(const Tensor& probs, double threshold) {
  Tensor h = row_entropy(mean(probs, {0}, false).reshape(Shape{1, probs.size(1)})).reshape(Shape{});
  if (threshold > 0) return clamp_min(sub(threshold, h), 0.0);
  return neg(h);
}

void aux_free_bias_update(std::vector<double>& bias, const std::vector<double>& counts, double rate, bool recenter) {
  MOELAB_CHECK(bias.size() == counts.size(), "aux_free_bias_update: " << bias.size() << " biases, " << counts.size()
                                                                      << " counts");
  if (bias.empty()) return;
  double m = 0;
  for (double c : counts) m += c;
  m /= static_cast<double>(counts.size());
  for (size_t i = 0; i < bias.size(); ++i) {
    double diff = m - counts[i];
    bias[i] += rate * (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0);
  }
  if (recenter) {
    double mb = 0;
    for (double b : bias) mb += b;
    mb /= static_cast<double>(bias.size());
    for (double& b : bias) b -= mb;
  }
}

}  // namespace moelab::moe
