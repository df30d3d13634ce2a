// Soft MoE forward: dispatch weights softmax over tokens, combine weights softmax over slots.
#include "core/moe/soft_moe.h"

#include "core/autograd/autograd.h"
#include "core/moe/dispatch.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {
Tensor l2_normalize_rows(const Tensor& x) { return x * rsqrt(add(sum(square(x), {-1}, true), 1e-12)); }
}  // namespace

SoftMoEOutput soft_moe_forward(const Tensor& x, const Router& router, const Experts& experts) {
  MOELAB_CHECK(x.dim() == 3, "soft_moe_forward: x must be (B, N, d), got " << x.shape().str());
  int64_t B = x.size(0), N = x.size(1), d = x.size(2);
  int64_t E = experts.num_experts, S = router.slots_per_expert, ES = E * S;
  Tensor phi = router.weight;  // (E*S, d)
  Tensor logits;
  if (router.cfg.soft_normalize)
    logits = matmul(l2_normalize_rows(x), l2_normalize_rows(phi).t()) * router.scale;
  else
    logits = matmul(x, phi.t());  // (B, N, E*S)
  Tensor dispatch = softmax(logits, 1);  // over the tokens of each sequence
  Tensor combine = softmax(logits, 2);   // over all slots
  Tensor slots = matmul(transpose(dispatch, 1, 2), x);  // (B, E*S, d)
  // Expert-major rows: expert e owns the B*S rows of its slots.
  Tensor rows = permute(slots.reshape(Shape{B, E, S, d}), {1, 0, 2, 3}).contiguous().reshape(Shape{E * B * S, d});
  std::vector<int64_t> offsets(static_cast<size_t>(E + 1));
  for (int64_t e = 0; e <= E; ++e) offsets[e] = e * B * S;
  Tensor y_rows = grouped_expert_ffn(rows, offsets, experts.weights());
  Tensor y_slots = permute(y_rows.reshape(Shape{E, B, S, d}), {1, 0, 2, 3}).contiguous().reshape(Shape{B, ES, d});
  SoftMoEOutput out;
  out.y = matmul(combine, y_slots);  // (B, N, d)
  {
    NoGradGuard ng;
    out.expert_mass = sum(combine.detach().reshape(Shape{B * N, E, S}), {2});
  }
  return out;
}

}  // namespace moelab::moe
