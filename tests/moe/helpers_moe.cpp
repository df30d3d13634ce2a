// MoE test helpers: naive per-token references.
#include "moe/helpers_moe.h"

#include <cmath>

#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab::test {

Tensor randn(const Shape& shape, uint64_t seed, double std, DType dtype) {
  RngStream rng(seed, "test_randn");
  return rand_normal(shape, 0.0, std, rng, dtype);
}

Tensor naive_moe_forward(moe::MoELayer& layer, const Tensor& x2, const moe::RoutingRecord& rec, int64_t seq_len,
                         const std::vector<int64_t>& token_ids, int64_t step) {
  moe::RouteInputs in;
  in.training = false;
  in.seq_len = seq_len;
  in.replay = &rec;
  in.step = step;
  in.token_ids = token_ids;
  moe::Routing r = layer.router->route(x2, in);
  int64_t T = x2.size(0);
  std::vector<Tensor> rows;
  for (int64_t t = 0; t < T; ++t) {
    Tensor xt = x2.slice(0, t, t + 1);  // (1, d)
    Tensor acc = mul(xt, 0.0);
    for (int64_t s = rec.token_offsets[t]; s < rec.token_offsets[t + 1]; ++s) {
      if (!rec.slot_kept.empty() && !rec.slot_kept[s]) continue;
      acc = acc + layer.experts->forward_expert(rec.slot_expert[s], xt) * r.slot_weight.slice(0, s, s + 1);
    }
    if (layer.shared_experts) {
      Tensor sh = mul(xt, 0.0);
      for (int64_t e = 0; e < layer.shared_experts->num_experts; ++e) sh = sh + layer.shared_experts->forward_expert(e, xt);
      if (layer.shared_gate) sh = sh * sigmoid(layer.shared_gate->forward(xt));
      acc = acc + sh;
    }
    rows.push_back(acc);
  }
  return concat(rows, 0);
}

Tensor naive_soft_moe_forward(moe::MoELayer& layer, const Tensor& x) {
  int64_t B = x.size(0), N = x.size(1);
  Tensor phi = layer.router->tensor("weight");  // (E*S, d)
  int64_t E = layer.cfg.num_experts, S = phi.size(0) / E;
  std::vector<Tensor> outs;
  for (int64_t b = 0; b < B; ++b) {
    Tensor xb = x.select(0, b);  // (N, d)
    Tensor logits = matmul(xb, phi.t());
    if (layer.cfg.option_bool("soft_normalize")) {
      auto norm = [](const Tensor& v) { return v / sqrt(add(sum(square(v), {-1}, true), 1e-12)); };
      logits = matmul(norm(xb), norm(phi).t()) * layer.router->tensor("scale");
    }
    Tensor D = softmax(logits, 0), C = softmax(logits, 1);
    std::vector<Tensor> ys;
    for (int64_t j = 0; j < E * S; ++j) {
      Tensor slot = sum(x.select(0, b) * D.slice(1, j, j + 1), {0}, true);  // (1, d)
      ys.push_back(layer.experts->forward_expert(j / S, slot));
    }
    Tensor Y = concat(ys, 0);  // (E*S, d)
    std::vector<Tensor> rows;
    for (int64_t t = 0; t < N; ++t) rows.push_back(sum(Y * C.slice(0, t, t + 1).t(), {0}, true));
    outs.push_back(concat(rows, 0).unsqueeze(0));
  }
  Tensor y = concat(outs, 0);
  if (layer.shared_experts) {
    Tensor x2 = x.reshape(Shape{B * N, x.size(2)});
    Tensor sh = mul(x2, 0.0);
    for (int64_t e = 0; e < layer.shared_experts->num_experts; ++e) sh = sh + layer.shared_experts->forward_expert(e, x2);
    if (layer.shared_gate) sh = sh * sigmoid(layer.shared_gate->forward(x2));
    y = y + sh.reshape(y.shape());
  }
  return y;
}

const moe::RoutingRecord& LayerRun::record(const nn::Module& layer) const {
  const moe::RoutingRecord* r = log.record(layer.path());
  MOELAB_CHECK(r, "no routing record for layer '" << layer.path() << "'");
  return *r;
}

const moe::RoutingTally& LayerRun::tally(const nn::Module& layer) const {
  const moe::RoutingTally* t = log.find(layer.path());
  MOELAB_CHECK(t, "no routing tally for layer '" << layer.path() << "'");
  return *t;
}

LayerRun run_layer(nn::Module& module, const Tensor& x, const nn::Batch& batch, int64_t step, uint64_t draw_key) {
  LayerRun run;
  nn::ForwardContext ctx(batch, step, draw_key);
  ctx.routing = &run.log;
  run.y = module.forward(x, ctx);
  run.aux = ctx.aux_losses();
  run.aux_total = ctx.total_aux_loss();
  return run;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  MOELAB_CHECK(a.numel() == b.numel(), "max_rel_diff: " << a.shape().str() << " vs " << b.shape().str());
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]) / std::max(1.0, std::abs(vb[i])));
  return m;
}

std::vector<Tensor> param_grads(const nn::Module& m) {
  std::vector<Tensor> out;
  for (auto& [name, p] : m.named_parameters()) {
    Tensor g = p.grad();
    out.push_back(g.defined() ? g.clone() : Tensor::zeros(p.shape(), p.dtype()));
  }
  return out;
}

}  // namespace moelab::test
