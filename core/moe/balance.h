#pragma once
// The balancing terms of docs/moe.md §2 as differentiable functions of the router's tensors. Each returns
// the raw term (a 0-d tensor); the layer pairs it with its coefficient. Counts are plain numbers: no
// gradient flows through them.
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::moe {

// Switch / GShard: E * sum_i f_i P_i with f_i = counts_i / (k * count_tokens) and P = mean over the T
// rows of probs (T, E). count_tokens is the number of tokens the counts cover (T locally; the global
// batch when the counts were summed across ranks).
Tensor switch_balance_loss(const Tensor& probs, const std::vector<double>& counts, double count_tokens, int64_t k);
// Sequence scope (DeepSeek): probs (B*N, E) in B sequences of N tokens, seq_counts (B*E) per-sequence
// counts -> E * mean_b sum_i f_bi P_bi with f_bi = c_bi / (k N).
Tensor switch_balance_loss_per_sequence(const Tensor& probs, const std::vector<double>& seq_counts, int64_t B,
                                        int64_t k);

// CV^2 = var / (mean^2 + 1e-10) of a vector (population variance), differentiable.
Tensor cv_squared(const Tensor& v);
// Importance (Shazeer 2017): CV^2(sum_t G_t) with gates (T, E) holding each token's combine weights.
Tensor importance_loss(const Tensor& gates);
// Load (Shazeer 2017): CV^2(sum_t Phi((clean - threshold) / sigma)). clean, noisy, sigma: (T, E);
// selected (T*E, 0/1): the token's chosen experts. threshold_{t,i} is the smallest selected noisy logit
// when i is not selected (the k-th largest), else the largest unselected one (the (k+1)-th; -inf if none).
Tensor load_loss(const Tensor& clean, const Tensor& noisy, const Tensor& sigma, const std::vector<uint8_t>& selected);
// Router z-loss (ST-MoE): mean_t logsumexp(z_t)^2 for logits (T, E).
Tensor router_z_loss(const Tensor& logits);
// LIMoE local entropy: mean_t H(p_t) (nats) for probs (T, E).
Tensor local_entropy(const Tensor& probs);
// LIMoE global entropy: -H(mean_t p_t); with threshold > 0: max(0, threshold - H(mean_t p_t)).
Tensor global_entropy(const Tensor& probs, double threshold);

// Standard normal CDF Phi(x) with derivative phi(x) (differentiable, element-wise).
Tensor normal_cdf(const Tensor& x);

// Aux-loss-free bias update (DeepSeek-V3): b_i += rate * sign(mean_j c_j - c_i); then b -= mean(b) when
// recenter. counts: the step's per-expert assignment counts.
void aux_free_bias_update(std::vector<double>& bias, const std::vector<double>& counts, double rate, bool recenter);

}  // namespace moelab::moe
