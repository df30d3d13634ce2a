#pragma once
// Sampling text from a causal TextTransformer with its key/value cache: the prompt is fed once, then one
// token at a time. Deterministic for a seed (draws come from RngStream(seed, "generate")).
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/util/rng.h"
#include "text/model/text_transformer.h"

namespace moelab::text {

struct SamplingOptions {
  int64_t max_tokens = 200;  // new tokens at most
  double temperature = 1.0;  // 0: always the most likely token (greedy)
  int64_t top_k = 0;         // draw among the k most likely tokens only (0: all)
  uint64_t seed = 0;
  int32_t stop_id = -1;      // stop after drawing this id (e.g. </s>); -1: never
};

// One draw from next-token logits (V): softmax(logits / temperature) restricted to the top_k largest logits
// (ties broken towards the smaller id); temperature 0 is the argmax.
int32_t sample_token(std::span<const float> logits, double temperature, int64_t top_k, RngStream& rng);

// Continues `prompt` (at least one id; the LM task's documents start after </s>) and returns the new ids.
// on_token is called with each id as soon as it is drawn. Learned positions stop at the table's length.
// The model should be in eval mode.
std::vector<int32_t> generate(TextTransformer& model, std::span<const int32_t> prompt, const SamplingOptions& options,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace moelab::text
