// The MoE layer: router -> capacity -> fused dispatch/experts/combine (+ shared experts), balancing terms,
// routing tallies and records.
#include "core/moe/moe_layer.h"

#include <algorithm>
#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/balance.h"
#include "core/moe/routing_stats.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {

// Sums over tokens of the row entropy (nats) and the row maximum of a (T, E) probability matrix.
void entropy_confidence_sums(const std::vector<double>& p, int64_t T, int64_t E, double& entropy, double& confidence) {
  entropy = confidence = 0;
  for (int64_t t = 0; t < T; ++t) {
    double h = 0, mx = 0;
    for (int64_t e = 0; e < E; ++e) {
      const double v = p[t * E + e];
      if (v > 0) h -= v * std::log(v);
      mx = std::max(mx, v);
    }
    entropy += h;
    confidence += mx;
  }
}

// A side input given per sequence (B) or per token (T) as one value per token.
std::vector<int64_t> per_token(const Tensor& v, int64_t T, int64_t B, const char* what) {
  std::vector<int64_t> raw = v.to_vector<int64_t>();
  if (static_cast<int64_t>(raw.size()) == T) return raw;
  MOELAB_CHECK(static_cast<int64_t>(raw.size()) == B && B > 0,
               "MoELayer: batch " << what << " has " << raw.size() << " entries; expected one per token (" << T
                                  << ") or per sequence (" << B << ")");
  std::vector<int64_t> out(static_cast<size_t>(T));
  const int64_t N = T / B;
  for (int64_t t = 0; t < T; ++t) out[t] = raw[t / N];
  return out;
}

}  // namespace

MoELayer::MoELayer(const MoEConfig& c, const MoELayerOptions& o, RngStream& rng)
    : nn::Module("MoELayer"), cfg(c), options(o) {
  cfg.check();
  MOELAB_CHECK(o.d_model > 0, "MoELayer: d_model must be positive, got " << o.d_model);
  const int64_t f = cfg.expert_d_ff > 0 ? cfg.expert_d_ff : o.d_ff;
  MOELAB_CHECK(f > 0, "MoELayer: the expert width is 0: set moe.expert_d_ff or the dense d_ff");
  router = register_module("router", find_router_family(cfg.router).make(cfg, {o.d_model, o.seq_len, o.dtype}, rng));
  experts = register_module("experts", std::make_shared<Experts>(cfg.num_experts, o.d_model, f, cfg.activation,
                                                                 cfg.expert_bias, o.init, rng, o.dtype));
  if (cfg.shared_experts > 0) {
    const int64_t fs = cfg.shared_expert_d_ff > 0 ? cfg.shared_expert_d_ff : f;
    shared_experts = register_module("shared_experts",
                                     std::make_shared<Experts>(cfg.shared_experts, o.d_model, fs, cfg.activation,
                                                               cfg.expert_bias, o.init, rng, o.dtype));
    if (cfg.shared_expert_gate)
      shared_gate = register_module("shared_expert_gate",
                                    std::make_shared<nn::Linear>(o.d_model, 1, false, rng, o.init, o.dtype));
  }
}

Tensor MoELayer::shared_forward(const Tensor& x2) {
  const int64_t T = x2.size(0), S = shared_experts->num_experts, d = x2.size(1);
  // Every shared expert sees every token: S segments of the same T rows.
  Tensor rows = S == 1 ? x2 : concat(std::vector<Tensor>(static_cast<size_t>(S), x2), 0);
  std::vector<int64_t> offsets(static_cast<size_t>(S + 1));
  for (int64_t s = 0; s <= S; ++s) offsets[s] = s * T;
  Tensor y = grouped_expert_ffn(rows, offsets, shared_experts->weights());
  if (S > 1) y = sum(y.reshape(Shape{S, T, d}), {0});
  if (shared_gate) y = y * sigmoid(shared_gate->forward(x2));
  return y;
}

Tensor MoELayer::forward(const Tensor& x, nn::ForwardContext& ctx) {
  const int64_t d = options.d_model;
  MOELAB_CHECK(x.dim() >= 2 && x.size(-1) == d, "MoELayer: input must be (..., " << d << "), got " << x.shape().str());
  const int64_t T = x.numel() / d, N = x.dim() >= 3 ? x.size(-2) : T, B = N > 0 ? T / N : 0;
  const int64_t E = cfg.num_experts;
  const nn::Batch& batch = ctx.batch();
  const bool training = is_training();
  Tensor x2 = x.reshape(Shape{T, d});
  RoutingTally tally(E);
  tally.forwards = 1;
  tally.tokens = T;
  std::vector<int64_t> labels;
  if (batch.labels.defined()) labels = per_token(batch.labels, T, B, "labels");
  Tensor probs;  // (T, E) for the probability-based terms
  Tensor y2;
  RoutingRecord record;

  if (router->mixes_tokens()) {
    MOELAB_CHECK(!batch.replay || !batch.replay->count(path()),
                 "MoELayer " << path() << ": routing replay does not apply to router = " << cfg.router
                             << " (no discrete choice)");
    MixedOutput mo = router->mix(x2.reshape(Shape{B, N, d}), *experts);
    y2 = mo.y.reshape(Shape{T, d});
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) {
        tally.expert_counts[e] += mo.expert_mass[t * E + e];
        if (!labels.empty()) tally.add_label_count(labels[t], e, mo.expert_mass[t * E + e]);
      }
    tally.assignments = static_cast<double>(T);
    entropy_confidence_sums(mo.expert_mass, T, E, tally.entropy_sum, tally.confidence_sum);
  } else {
    RouteInputs in;
    in.training = training;
    in.seq_len = N;
    if (batch.token_ids.defined()) in.token_ids = per_token(batch.token_ids, T, B, "token_ids");
    if (batch.replay) {
      auto it = batch.replay->find(path());
      if (it != batch.replay->end()) in.replay = it->second.get();
    }
    in.step = ctx.step();
    in.rng = &ctx.rng(*this);
    Routing r = router->route(x2, in);
    probs = r.probs;
    const int64_t S = static_cast<int64_t>(r.slot_expert.size());
    // ---- capacity ----
    std::vector<int64_t> plan_expert = r.slot_expert;
    int64_t capacity = -1;
    Tensor priority;
    if (in.replay) {
      for (int64_t s = 0; s < S; ++s)
        if (!in.replay->slot_kept.empty() && !in.replay->slot_kept[s]) plan_expert[s] = -1;
    } else if (cfg.capacity_mode == CapacityMode::capacity) {
      const double cf = training || cfg.eval_capacity_factor <= 0 ? cfg.capacity_factor : cfg.eval_capacity_factor;
      capacity = std::max<int64_t>(cfg.min_capacity,
                                   static_cast<int64_t>(std::ceil(cf * double(T) * double(cfg.top_k) / double(E))));
      if (cfg.drop_policy == DropPolicy::probability)
        priority = r.slot_priority.defined() ? r.slot_priority : r.slot_weight.detach();
    }
    auto plan = make_dispatch_plan(plan_expert, r.token_offsets, E, capacity, priority, x.device());
    y2 = parallel.expert_parallel() ? expert_parallel_dispatch_combine(parallel, x2, r.slot_weight, *plan, experts->weights())
                                    : moe_dispatch_combine(x2, r.slot_weight, plan, experts->weights());
    // ---- statistics of the choice (before drops) ----
    for (int64_t e : r.slot_expert) tally.expert_counts[e] += 1.0;
    tally.assignments = static_cast<double>(S);
    tally.dropped = static_cast<double>(S - plan->num_rows);
    if (!labels.empty()) tally.add_labels(labels, r.slot_expert, r.token_offsets);
    if (r.scores.defined()) {
      std::vector<double> p = r.scores.to_vector<double>();
      if (cfg.score == ScoreKind::sigmoid) p = r.probs.to_vector<double>();
      entropy_confidence_sums(p, T, E, tally.entropy_sum, tally.confidence_sum);
    }
    if (ctx.routing && ctx.routing->keep_records()) {
      std::vector<int64_t> slot_row = plan->slot_row.to_vector<int64_t>();
      record.num_tokens = T;
      record.num_experts = E;
      record.token_offsets = r.token_offsets;
      record.slot_expert = r.slot_expert;
      record.slot_kept.assign(static_cast<size_t>(S), 0);
      for (int64_t s = 0; s < S; ++s) record.slot_kept[s] = slot_row[s] >= 0 ? 1 : 0;
      record.slot_weight = r.slot_weight.to_vector<float>();
      record.token_labels = labels;
    }
    if (probs.defined()) balancing_terms(r, B, N, tally.expert_counts, x, ctx);
  }
  if ((cfg.local_entropy_loss > 0 || cfg.global_entropy_loss > 0) && probs.defined()) entropy_terms(probs, T, B, ctx);

  if (shared_experts) y2 = y2 + shared_forward(x2);
  if (Tensor bias = router->selection_bias(); bias.defined()) {
    std::vector<double> b = bias.to_vector<double>();
    tally.has_bias = true;
    tally.bias_min = *std::min_element(b.begin(), b.end());
    tally.bias_max = *std::max_element(b.begin(), b.end());
  }
  if (ctx.routing) {
    ctx.routing->layer(path(), E).merge(tally);
    if (ctx.routing->keep_records() && record.num_tokens > 0) ctx.routing->put_record(path(), std::move(record));
  }
  return y2.reshape(x.shape());
}

void MoELayer::balancing_terms(const Routing& r, int64_t B, int64_t N, const std::vector<double>& counts,
                               const Tensor& x, nn::ForwardContext& ctx) {
  const int64_t T = static_cast<int64_t>(r.token_offsets.size()) - 1, E = cfg.num_experts, k = cfg.top_k;
  const int64_t S = static_cast<int64_t>(r.slot_expert.size());
  if (cfg.switch_loss > 0) {
    Tensor v;
    if (cfg.switch_loss_scope == BalanceScope::sequence && B > 1) {
      std::vector<double> seq(static_cast<size_t>(B * E), 0.0);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) seq[(t / N) * E + r.slot_expert[s]] += 1;
      v = switch_balance_loss_per_sequence(r.probs, seq, B, k);
    } else if (cfg.switch_loss_scope == BalanceScope::global && parallel.comm && parallel.comm->size() > 1) {
      // f from the expert counts of every rank's micro-batch (summed in rank order, exact), P from this
      // rank's tokens: with equal tokens per rank, the mean of the ranks' terms is E sum f P of the
      // micro-batches trained together (and each rank's gradient is its share of it).
      std::vector<double> all = counts;
      all.push_back(static_cast<double>(T));
      parallel.comm->all_reduce_sum(all);
      const double tokens = all.back();
      all.pop_back();
      v = switch_balance_loss(r.probs, all, tokens, k);
    } else {
      v = switch_balance_loss(r.probs, counts, static_cast<double>(T), k);
    }
    ctx.add_aux_loss(*this, "switch_loss", v, cfg.switch_loss);
  }
  if (cfg.importance_loss > 0) {
    std::vector<int64_t> flat(static_cast<size_t>(S));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) flat[s] = t * E + r.slot_expert[s];
    Tensor gates = scatter_add(Tensor::zeros(Shape{T * E}, x.dtype(), x.device()), 0,
                               Tensor::from_vector(flat, Shape{S}, x.device()), r.slot_weight.reshape(Shape{S}));
    ctx.add_aux_loss(*this, "importance_loss", importance_loss(gates.reshape(Shape{T, E})), cfg.importance_loss);
  }
  if (cfg.load_loss > 0) {
    std::vector<uint8_t> selected(static_cast<size_t>(T * E), 0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) selected[t * E + r.slot_expert[s]] = 1;
    ctx.add_aux_loss(*this, "load_loss", load_loss(r.clean_logits, r.logits, r.noise_std, selected), cfg.load_loss);
  }
  if (cfg.z_loss > 0) ctx.add_aux_loss(*this, "z_loss", router_z_loss(r.logits), cfg.z_loss);
}

// LIMoE's entropy terms, per group (modality) when the batch names groups.
void MoELayer::entropy_terms(const Tensor& probs, int64_t T, int64_t B, nn::ForwardContext& ctx) {
  const nn::Batch& batch = ctx.batch();
  std::vector<std::vector<int64_t>> members;
  if (batch.groups.defined()) {
    std::vector<int64_t> g = per_token(batch.groups, T, B, "groups");
    const int64_t G = batch.num_groups > 0 ? batch.num_groups : *std::max_element(g.begin(), g.end()) + 1;
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
      Tensor pg = index_select(probs, Tensor::from_vector(m, Shape{static_cast<int64_t>(m.size())}, probs.device()));
      if (cfg.local_entropy_loss > 0) add_term(local, local_entropy(pg));
      if (cfg.global_entropy_loss > 0) add_term(global, global_entropy(pg, cfg.global_entropy_threshold));
    }
  }
  if (local.defined()) ctx.add_aux_loss(*this, "local_entropy_loss", local, cfg.local_entropy_loss);
  if (global.defined()) ctx.add_aux_loss(*this, "global_entropy_loss", global, cfg.global_entropy_loss);
}

void MoELayer::after_optimizer_step(const nn::StepEnd& end) {
  if (!end.routing) return;
  if (const RoutingTally* t = end.routing->find(path())) router->after_step(t->expert_counts);
}

std::vector<std::pair<std::string, MoELayer*>> find_moe_layers(nn::Module& root) {
  std::vector<std::pair<std::string, MoELayer*>> out;
  for (auto& [path, m] : root.named_modules())
    if (auto* moe = dynamic_cast<MoELayer*>(m)) out.emplace_back(path, moe);
  return out;
}

std::vector<int64_t> moe_block_indices(int64_t depth, int64_t every, const std::vector<int64_t>& layers) {
  std::vector<int64_t> out;
  if (!layers.empty()) {
    for (int64_t l : layers) {
      MOELAB_CHECK(l >= 0 && l < depth, "MoE layer index " << l << " is outside the " << depth << " blocks [0, "
                                                           << depth << ")");
      MOELAB_CHECK(std::find(out.begin(), out.end(), l) == out.end(), "MoE layer index " << l << " listed twice");
      out.push_back(l);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  MOELAB_CHECK(every >= 0, "moe every must be >= 0, got " << every);
  if (every == 0) return out;
  for (int64_t i = every - 1; i < depth; i += every) out.push_back(i);
  return out;
}

}  // namespace moelab::moe
