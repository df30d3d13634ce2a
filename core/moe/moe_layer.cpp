// The MoE layer: router -> capacity -> fused dispatch/experts/combine (+ shared experts), balancing terms,
// statistics, routing monitor and record/replay.
#include "core/moe/moe_layer.h"

#include <algorithm>
#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/balance.h"
#include "core/moe/soft_moe.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {

int64_t soft_slots(const MoEConfig& cfg, const MoELayerOptions& o) {
  if (cfg.router != RouterKind::soft_moe) return 0;
  if (cfg.slots_per_expert > 0) return cfg.slots_per_expert;
  MOELAB_CHECK(o.seq_len > 0, "router = soft_moe needs moe.slots_per_expert or the layer's seq_len to size its "
                              "slots (S = round(capacity_factor * seq_len / E))");
  return std::max<int64_t>(1, std::llround(cfg.capacity_factor * double(o.seq_len) / double(cfg.num_experts)));
}

Tensor scalar_stat(double v) { return Tensor::scalar(v, DType::f64); }

// Mean row entropy (nats) and mean row maximum of a (T, E) probability matrix.
void entropy_confidence(const std::vector<double>& p, int64_t T, int64_t E, double& entropy, double& confidence) {
  entropy = confidence = 0;
  if (T == 0) return;
  for (int64_t t = 0; t < T; ++t) {
    double h = 0, mx = 0;
    for (int64_t e = 0; e < E; ++e) {
      double v = p[t * E + e];
      if (v > 0) h -= v * std::log(v);
      mx = std::max(mx, v);
    }
    entropy += h;
    confidence += mx;
  }
  entropy /= double(T);
  confidence /= double(T);
}

}  // namespace

MoELayer::MoELayer(const MoEConfig& c, const MoELayerOptions& o, RngStream& rng)
    : nn::Module("MoELayer"), cfg(c), options(o), monitor_(c.num_experts) {
  cfg.validate();
  MOELAB_CHECK(o.d_model > 0, "MoELayer: d_model must be positive, got " << o.d_model);
  int64_t f = cfg.expert_d_ff > 0 ? cfg.expert_d_ff : o.d_ff;
  MOELAB_CHECK(f > 0, "MoELayer: the expert width is 0: set moe.expert_d_ff or the dense d_ff");
  router = register_module("router", std::make_shared<Router>(cfg, o.d_model, rng, o.dtype, soft_slots(cfg, o)));
  experts = register_module("experts", std::make_shared<Experts>(cfg.num_experts, o.d_model, f, cfg.activation,
                                                                 cfg.expert_bias, o.init, rng, o.dtype));
  if (cfg.shared_experts > 0) {
    int64_t fs = cfg.shared_expert_d_ff > 0 ? cfg.shared_expert_d_ff : f;
    shared_experts = register_module("shared_experts",
                                     std::make_shared<Experts>(cfg.shared_experts, o.d_model, fs, cfg.activation,
                                                               cfg.expert_bias, o.init, rng, o.dtype));
    if (cfg.shared_expert_gate)
      shared_gate = register_module("shared_expert_gate",
                                    std::make_shared<nn::Linear>(o.d_model, 1, false, rng, o.init, o.dtype));
  }
  step_counts_.assign(static_cast<size_t>(cfg.num_experts), 0.0);
}

std::vector<int64_t> MoELayer::per_token(const Tensor& v, int64_t T, int64_t B, const char* what) const {
  std::vector<int64_t> raw = v.to_vector<int64_t>();
  if (static_cast<int64_t>(raw.size()) == T) return raw;
  MOELAB_CHECK(static_cast<int64_t>(raw.size()) == B && B > 0,
               "MoELayer: context " << what << " has " << raw.size() << " entries; expected one per token (" << T
                                    << ") or per sequence (" << B << ")");
  std::vector<int64_t> out(static_cast<size_t>(T));
  int64_t N = T / B;
  for (int64_t t = 0; t < T; ++t) out[t] = raw[t / N];
  return out;
}

Tensor MoELayer::shared_forward(const Tensor& x2) {
  int64_t T = x2.size(0), S = shared_experts->num_experts, d = x2.size(1);
  // Every shared expert sees every token: S segments of the same T rows.
  Tensor rows = S == 1 ? x2 : concat(std::vector<Tensor>(static_cast<size_t>(S), x2), 0);
  std::vector<int64_t> offsets(static_cast<size_t>(S + 1));
  for (int64_t s = 0; s <= S; ++s) offsets[s] = s * T;
  Tensor y = grouped_expert_ffn(rows, offsets, shared_experts->weights());
  if (S > 1) y = sum(y.reshape(Shape{S, T, d}), {0});
  if (shared_gate) y = y * sigmoid(shared_gate->forward(x2));
  return y;
}

nn::ForwardOutput MoELayer::forward_aux(const Tensor& x) {
  int64_t d = options.d_model;
  MOELAB_CHECK(x.dim() >= 2 && x.size(-1) == d, "MoELayer: input must be (..., " << d << "), got " << x.shape().str());
  int64_t T = x.numel() / d, N = x.dim() >= 3 ? x.size(-2) : T, B = N > 0 ? T / N : 0;
  int64_t E = cfg.num_experts, k = cfg.top_k;
  bool training = is_training();
  Tensor x2 = x.reshape(Shape{T, d});
  nn::ForwardOutput out;
  MoEStats st;
  st.tokens = T;
  std::vector<double> counts(static_cast<size_t>(E), 0.0);
  Tensor probs;  // (T, E) for the probability-based terms
  Tensor y2;

  if (cfg.router == RouterKind::soft_moe) {
    MOELAB_CHECK(!ctx_.replay, "MoELayer: routing replay does not apply to router = soft_moe (no discrete choice)");
    SoftMoEOutput so = soft_moe_forward(x2.reshape(Shape{B, N, d}), *router, *experts);
    y2 = so.y.reshape(Shape{T, d});
    std::vector<double> mass = so.expert_mass.to_vector<double>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) counts[e] += mass[t * E + e];
    st.assignments = T;
    entropy_confidence(mass, T, E, st.router_entropy, st.router_confidence);
    if (ctx_.labels.defined()) {
      std::vector<int64_t> labels = per_token(ctx_.labels, T, B, "labels");
      for (int64_t t = 0; t < T; ++t)
        for (int64_t e = 0; e < E; ++e) monitor_.add_count(labels[t], e, mass[t * E + e]);
    }
    last_record_ = RoutingRecord();
  } else {
    RouteOptions ro;
    ro.training = training;
    ro.seq_len = N;
    ro.token_ids = ctx_.token_ids;
    ro.replay = ctx_.replay.get();
    ro.step = step_;
    Routing r = router->route(x2, ro);
    probs = r.probs;
    int64_t S = static_cast<int64_t>(r.slot_expert.size());
    // ---- capacity ----
    std::vector<int64_t> plan_expert = r.slot_expert;
    int64_t capacity = -1;
    Tensor priority;
    if (ctx_.replay) {
      const RoutingRecord& rep = *ctx_.replay;
      for (int64_t s = 0; s < S; ++s)
        if (!rep.slot_kept.empty() && !rep.slot_kept[s]) plan_expert[s] = -1;
    } else if (cfg.capacity_mode == CapacityMode::capacity) {
      double cf = training || cfg.eval_capacity_factor <= 0 ? cfg.capacity_factor : cfg.eval_capacity_factor;
      capacity = std::max<int64_t>(cfg.min_capacity, static_cast<int64_t>(std::ceil(cf * double(T) * double(k) / double(E))));
      if (cfg.drop_policy == DropPolicy::probability) priority = r.slot_priority.defined() ? r.slot_priority : r.slot_weight.detach();
    }
    auto plan = make_dispatch_plan(plan_expert, r.token_offsets, E, capacity, priority, x.device());
    y2 = moe_dispatch_combine(x2, r.slot_weight, plan, experts->weights());
    // ---- statistics of the choice (before drops) ----
    for (int64_t e : r.slot_expert) counts[e] += 1.0;
    st.assignments = S;
    st.dropped = S - plan->num_rows;
    std::vector<int64_t> slot_row = plan->slot_row.to_vector<int64_t>();
    last_record_.num_tokens = T;
    last_record_.num_experts = E;
    last_record_.token_offsets = r.token_offsets;
    last_record_.slot_expert = r.slot_expert;
    last_record_.slot_kept.assign(static_cast<size_t>(S), 0);
    for (int64_t s = 0; s < S; ++s) last_record_.slot_kept[s] = slot_row[s] >= 0 ? 1 : 0;
    last_record_.slot_weight = r.slot_weight.to_vector<float>();
    if (r.scores.defined()) {
      std::vector<double> p = r.scores.to_vector<double>();
      if (cfg.score == ScoreKind::sigmoid) p = r.probs.to_vector<double>();
      entropy_confidence(p, T, E, st.router_entropy, st.router_confidence);
    }
    if (ctx_.labels.defined()) monitor_.add(per_token(ctx_.labels, T, B, "labels"), r.slot_expert, r.token_offsets);

    // ---- balancing terms (need router probabilities) ----
    if (probs.defined()) {
      if (cfg.switch_loss > 0) {
        Tensor v;
        if (cfg.switch_loss_scope == BalanceScope::sequence && B > 1) {
          std::vector<double> seq(static_cast<size_t>(B * E), 0.0);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) seq[(t / N) * E + r.slot_expert[s]] += 1;
          v = switch_balance_loss_per_sequence(probs, seq, B, k);
        } else if (cfg.switch_loss_scope == BalanceScope::global && reducer_) {
          std::vector<double> g = counts;
          g.push_back(static_cast<double>(T));
          reducer_(g);
          double tokens = g.back();
          g.pop_back();
          v = switch_balance_loss(probs, g, tokens, k);
        } else {
          v = switch_balance_loss(probs, counts, static_cast<double>(T), k);
        }
        out.aux_losses.push_back({"switch_loss", v, cfg.switch_loss});
      }
      if (cfg.importance_loss > 0) {
        std::vector<int64_t> flat(static_cast<size_t>(S));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) flat[s] = t * E + r.slot_expert[s];
        Tensor gates = scatter_add(Tensor::zeros(Shape{T * E}, x.dtype(), x.device()), 0,
                                   Tensor::from_vector(flat, Shape{S}, x.device()),
                                   r.slot_weight.reshape(Shape{S}));
        out.aux_losses.push_back({"importance_loss", importance_loss(gates.reshape(Shape{T, E})), cfg.importance_loss});
      }
      if (cfg.load_loss > 0) {
        std::vector<uint8_t> selected(static_cast<size_t>(T * E), 0);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) selected[t * E + r.slot_expert[s]] = 1;
        out.aux_losses.push_back({"load_loss", load_loss(r.clean_logits, r.logits, r.noise_std, selected), cfg.load_loss});
      }
      if (cfg.z_loss > 0) out.aux_losses.push_back({"z_loss", router_z_loss(r.logits), cfg.z_loss});
    }
  }

  // ---- LIMoE entropy terms (per group) ----
  bool entropy_terms = (cfg.local_entropy_loss > 0 || cfg.global_entropy_loss > 0) && probs.defined();
  if (entropy_terms) {
    std::vector<std::vector<int64_t>> members;
    if (ctx_.groups.defined()) {
      std::vector<int64_t> g = per_token(ctx_.groups, T, B, "groups");
      int64_t G = ctx_.num_groups > 0 ? ctx_.num_groups : *std::max_element(g.begin(), g.end()) + 1;
      members.resize(static_cast<size_t>(G));
      for (int64_t t = 0; t < T; ++t) {
        MOELAB_CHECK(g[t] >= 0 && g[t] < G, "MoELayer: group " << g[t] << " of token " << t << " outside [0, " << G << ")");
        members[g[t]].push_back(t);
      }
    }
    Tensor local, global;
    auto add_term = [](Tensor& acc, const Tensor& v) { acc = acc.defined() ? acc + v : v; };
    if (members.empty()) {
      if (cfg.local_entropy_loss > 0) local = local_entropy(probs);
      if (cfg.global_entropy_loss > 0) global = global_entropy(probs, cfg.global_entropy_threshold);
    } else {
      for (auto& m : members) {
        if (m.empty()) continue;
        Tensor pg = index_select(probs, Tensor::from_vector(m, Shape{static_cast<int64_t>(m.size())}, x.device()));
        if (cfg.local_entropy_loss > 0) add_term(local, local_entropy(pg));
        if (cfg.global_entropy_loss > 0) add_term(global, global_entropy(pg, cfg.global_entropy_threshold));
      }
    }
    if (local.defined()) out.aux_losses.push_back({"local_entropy_loss", local, cfg.local_entropy_loss});
    if (global.defined()) out.aux_losses.push_back({"global_entropy_loss", global, cfg.global_entropy_loss});
  }

  if (shared_experts) y2 = y2 + shared_forward(x2);
  out.y = y2.reshape(x.shape());

  // ---- statistics ----
  st.set_counts(counts);
  st.dropped_fraction = st.assignments > 0 ? double(st.dropped) / double(st.assignments) : 0.0;
  for (auto& a : out.aux_losses) st.terms.emplace_back(a.name, a.value.item());
  if (router->bias.defined()) {
    std::vector<double> b = router->bias.to_vector<double>();
    st.bias_min = *std::min_element(b.begin(), b.end());
    st.bias_max = *std::max_element(b.begin(), b.end());
  }
  if (training && cfg.selection_bias)
    for (int64_t e = 0; e < E; ++e) step_counts_[e] += counts[e];
  last_stats_ = st;
  accumulator_.add(st);
  out.stats.emplace_back("load", Tensor::from_vector(st.load, Shape{E}));
  out.stats.emplace_back("load_cv", scalar_stat(st.load_cv));
  out.stats.emplace_back("load_max_over_mean", scalar_stat(st.load_max_over_mean));
  out.stats.emplace_back("unused_experts", scalar_stat(double(st.unused_experts)));
  out.stats.emplace_back("dropped_fraction", scalar_stat(st.dropped_fraction));
  out.stats.emplace_back("router_entropy", scalar_stat(st.router_entropy));
  out.stats.emplace_back("router_confidence", scalar_stat(st.router_confidence));
  if (router->bias.defined()) {
    out.stats.emplace_back("bias_min", scalar_stat(st.bias_min));
    out.stats.emplace_back("bias_max", scalar_stat(st.bias_max));
  }
  return out;
}

void MoELayer::after_optimizer_step() {
  ++step_;
  if (!cfg.selection_bias) return;
  std::vector<double> c = step_counts_;
  c.push_back(0.0);
  if (reducer_) reducer_(c);
  c.pop_back();
  double total = 0;
  for (double v : c) total += v;
  if (total > 0) {
    std::vector<double> b = router->bias.to_vector<double>();
    aux_free_bias_update(b, c, cfg.bias_update_rate, cfg.bias_recenter);
    NoGradGuard ng;
    Tensor dst = router->bias.detach();
    dst.copy_(Tensor::from_vector(b, Shape{cfg.num_experts}));
  }
  std::fill(step_counts_.begin(), step_counts_.end(), 0.0);
}

void MoELayer::take_pending_counts(MoELayer& replica) {
  MOELAB_CHECK(replica.step_counts_.size() == step_counts_.size(),
               "MoELayer::take_pending_counts: the replica has " << replica.step_counts_.size() << " experts, this layer "
                                                                 << step_counts_.size());
  for (size_t e = 0; e < step_counts_.size(); ++e) step_counts_[e] += replica.step_counts_[e];
  std::fill(replica.step_counts_.begin(), replica.step_counts_.end(), 0.0);
}

std::vector<std::pair<std::string, MoELayer*>> find_moe_layers(nn::Module& root) {
  std::vector<std::pair<std::string, MoELayer*>> out;
  for (auto& [path, m] : root.named_modules())
    if (auto* moe = dynamic_cast<MoELayer*>(m)) out.emplace_back(path, moe);
  return out;
}

void set_moe_context(nn::Module& root, const MoEForwardContext& ctx) {
  for (auto& [path, m] : find_moe_layers(root)) m->set_context(ctx);
}

}  // namespace moelab::moe
