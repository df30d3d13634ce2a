// Soft MoE (Puigcerver et al. 2023; docs/moe.md §4): every slot is a softmax-weighted mix of the tokens of
// one sequence, every expert processes its S slots, and every token's output mixes all slot outputs.
// Fully differentiable; nothing is dropped. Parameters: weight (E*S, d), the slot parameters Phi^T, and
// scale () with soft_normalize.
#include <algorithm>
#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/dispatch.h"
#include "core/moe/router_scores.h"
#include "core/nn/init.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {

class SoftMoERouter : public Router {
 public:
  SoftMoERouter(const MoEConfig& c, const RouterBuild& b, RngStream& rng)
      : Router("SoftMoERouter", c, b.d_model, rng) {
    slots_ = cfg.option_int("slots_per_expert");
    if (slots_ == 0) {
      MOELAB_CHECK(b.seq_len > 0, "router = soft_moe needs moe.slots_per_expert or the layer's seq_len to size its "
                                  "slots (S = round(capacity_factor * seq_len / E))");
      slots_ = std::max<int64_t>(1, std::llround(cfg.capacity_factor * double(b.seq_len) / double(cfg.num_experts)));
    }
    weight_ = register_parameter("weight", nn::init_weight(Shape{cfg.num_experts * slots_, d_model}, d_model, {}, rng, b.dtype));
    if (cfg.option_bool("soft_normalize")) scale_ = register_parameter("scale", Tensor::ones(Shape{}, b.dtype));
  }

  bool has_probs() const override { return false; }
  bool mixes_tokens() const override { return true; }
  Routing route(const Tensor&, const RouteInputs&) override {
    MOELAB_FAIL("router = soft_moe mixes tokens into slots; it has no per-token choice to route");
  }

  // x: (B, N, d) -> y (B, N, d) and each token's combine mass per expert.
  MixedOutput mix(const Tensor& x, const Experts& experts) override {
    MOELAB_CHECK(x.dim() == 3, "soft_moe: x must be (B, N, d), got " << x.shape().str());
    const int64_t B = x.size(0), N = x.size(1), d = x.size(2);
    const int64_t E = experts.num_experts, S = slots_, ES = E * S;
    Tensor logits = scale_.defined() ? matmul(l2_normalize_rows(x), l2_normalize_rows(weight_).t()) * scale_
                                     : matmul(x, weight_.t());  // (B, N, E*S)
    Tensor dispatch = softmax(logits, 1);  // over the tokens of each sequence
    Tensor combine = softmax(logits, 2);   // over all slots
    Tensor slots = matmul(transpose(dispatch, 1, 2), x);  // (B, E*S, d)
    // Expert-major rows: expert e owns the B*S rows of its slots.
    Tensor rows = permute(slots.reshape(Shape{B, E, S, d}), {1, 0, 2, 3}).contiguous().reshape(Shape{E * B * S, d});
    std::vector<int64_t> offsets(static_cast<size_t>(E + 1));
    for (int64_t e = 0; e <= E; ++e) offsets[e] = e * B * S;
    Tensor y_rows = grouped_expert_ffn(rows, offsets, experts.weights());
    Tensor y_slots = permute(y_rows.reshape(Shape{E, B, S, d}), {1, 0, 2, 3}).contiguous().reshape(Shape{B, ES, d});
    MixedOutput out;
    out.y = matmul(combine, y_slots);  // (B, N, d)
    NoGradGuard ng;
    out.expert_mass = sum(combine.detach().reshape(Shape{B * N, E, S}), {2}).to_vector<double>();
    return out;
  }

  int64_t slots_per_expert() const { return slots_; }

 private:
  int64_t slots_ = 0;
  Tensor weight_, scale_;
};

void validate(const MoEConfig& cfg, const std::string& prefix, std::vector<io::ConfigIssue>& out) {
  const std::string p = prefix + ".";
  check_router_features(cfg, prefix, {.logit_noise = false}, out);
  if (cfg.capacity_mode != CapacityMode::dropless)
    out.push_back({p + "capacity_mode", "router = soft_moe never drops tokens; set " + p + "capacity_mode = dropless"});
  if (cfg.option_int("slots_per_expert") < 0)
    out.push_back({p + "slots_per_expert", p + "slots_per_expert must be >= 0"});
  if (cfg.option_int("slots_per_expert") == 0 && cfg.capacity_factor <= 0)
    out.push_back({p + "capacity_factor", p + "capacity_factor must be > 0 for router = soft_moe without slots_per_expert"});
}

}  // namespace

RouterFamily soft_moe_family() {
  return {{"soft_moe"},
          "Soft MoE: slots are softmax mixes of a sequence's tokens; outputs mix all slots",
          {{"slots_per_expert", MoEKeyType::integer, "0", {},
            "soft_moe: slots per expert S (0 = max(1, round(capacity_factor * seq_len / E)))"},
           {"soft_normalize", MoEKeyType::boolean, "false", {}, "soft_moe: L2-normalize x and Phi with a learnable scale"}},
          validate,
          [](const MoEConfig& c, const RouterBuild& b, RngStream& rng) { return std::make_shared<SoftMoERouter>(c, b, rng); }};
}

}  // namespace moelab::moe
