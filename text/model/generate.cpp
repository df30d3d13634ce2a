// Sampling with temperature and top-k through the KV cache.
#include "text/model/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::text {

int32_t sample_token(std::span<const float> logits, double temperature, int64_t top_k, RngStream& rng) {
  const int64_t V = static_cast<int64_t>(logits.size());
  MOELAB_CHECK(V > 0, "sample_token: no logits");
  MOELAB_CHECK(temperature >= 0 && std::isfinite(temperature), "sample_token: temperature " << temperature
                                                                                            << " must be >= 0");
  MOELAB_CHECK(top_k >= 0, "sample_token: top_k " << top_k << " must be >= 0");
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  // Largest logit first; equal logits by id, so the order (and the draw) is reproducible.
  auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const int64_t k = top_k > 0 ? std::min(top_k, V) : V;
  if (temperature == 0 || k == 1) return *std::min_element(ids.begin(), ids.end(), before);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), before);
  std::vector<double> p(static_cast<size_t>(k));
  const double top = logits[ids[0]];
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += p[i] = std::exp((double(logits[ids[i]]) - top) / temperature);
  double u = rng.uniform() * total;
  for (int64_t i = 0; i < k; ++i) {
    u -= p[i];
    if (u < 0) return ids[i];
  }
  return ids[k - 1];  // rounding left u at or just above zero
}

std::vector<int32_t> generate(TextTransformer& model, std::span<const int32_t> prompt, const SamplingOptions& o,
                              const std::function<void(int32_t)>& on_token) {
  MOELAB_CHECK(!prompt.empty(), "generate: the prompt needs at least one token");
  MOELAB_CHECK(model.options.causal, "generate: the model is not causal (an encoder cannot generate)");
  NoGradGuard no_grad;
  const Device device = model.embed->weight.device();
  RngStream rng(o.seed, "generate");
  DecodeState state = model.new_decode_state();
  const int64_t limit = model.options.positions == PositionKind::learned ? model.options.max_len : std::numeric_limits<int64_t>::max();
  std::vector<int32_t> out;
  std::vector<int64_t> next(prompt.begin(), prompt.end());
  MOELAB_CHECK(static_cast<int64_t>(next.size()) <= limit,
               "generate: the prompt's " << next.size() << " tokens exceed the learned positions (" << limit << ")");
  while (static_cast<int64_t>(out.size()) < o.max_tokens) {
    nn::Batch b;
    b.tokens = Tensor::from_vector(next, Shape{1, static_cast<int64_t>(next.size())}).to(device);
    b.token_ids = b.tokens.to(Device::cpu());  // hash routing keys
    nn::ForwardContext ctx(b);
    Tensor logits = model.forward_incremental(b.tokens, ctx, state);  // (1, T, V)
    const int64_t T = logits.size(1);
    const std::vector<float> last = logits.select(1, T - 1).to(DType::f32).to(Device::cpu()).to_vector<float>();
    const int32_t id = sample_token(last, o.temperature, o.top_k, rng);
    out.push_back(id);
    if (on_token) on_token(id);
    if (id == o.stop_id || state.length() >= limit) break;
    next.assign(1, id);
  }
  return out;
}

}  // namespace moelab::text
