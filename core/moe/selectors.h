#pragma once
// The discrete part of routing (docs/moe.md §1.3): which experts each token goes to. Plain host loops on
// detached scores; the gradient flows through the combine weights the router gathers afterwards.
// Results are token-major slot lists (see dispatch.h).
#include <cstdint>
#include <vector>

namespace moelab::moe {

// scores: (T, E) row-major -> slot_expert (T*k): each token's k best experts in descending order
// (ties -> lower expert index).
std::vector<int64_t> select_top_k(const std::vector<double>& scores, int64_t T, int64_t E, int64_t k);

// Expert choice: each expert takes its `capacity` highest-probability tokens (ties -> lower token).
// probs: (T, E) -> slot_expert and token_offsets (T+1), each token's experts in ascending order.
void select_expert_choice(const std::vector<double>& probs, int64_t T, int64_t E, int64_t capacity,
                          std::vector<int64_t>& slot_expert, std::vector<int64_t>& token_offsets);

// BASE / Sinkhorn: alternately rescales exp(logits) so that every token's row sums to 1 and every expert's
// column to T/E; returns the balanced (T, E) matrix (used only to choose).
std::vector<double> sinkhorn_balance(const std::vector<double>& logits, int64_t T, int64_t E, int64_t iterations);

// Hash routing: expert_j = (hash(id) + j) mod E for j < k (k distinct experts; a fixed control).
std::vector<int64_t> select_hash(const std::vector<int64_t>& ids, int64_t E, int64_t k);

// Random routing: k distinct uniform experts per token from Philox draws (key, offset + t*k + j).
std::vector<int64_t> select_random(int64_t T, int64_t E, int64_t k, uint64_t key, uint64_t offset);

}  // namespace moelab::moe
