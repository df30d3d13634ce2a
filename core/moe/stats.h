#pragma once
// Routing statistics (specs/moe.md §5): per-forward layer statistics, an accumulator over a logging
// interval, the labels x experts routing monitor with its mutual information, and per-token records.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/moe/router.h"

namespace moelab::moe {

struct MoEStats {
  int64_t tokens = 0;
  int64_t assignments = 0;           // (token, expert) assignments chosen, before capacity drops
  int64_t dropped = 0;               // assignments dropped by capacity
  std::vector<double> load;          // (E) fraction of the assignments each expert received
  double load_cv = 0;                // std / mean of the per-expert counts
  double load_max_over_mean = 0;
  int64_t unused_experts = 0;        // experts that received nothing
  double dropped_fraction = 0;
  double router_entropy = 0;         // mean over tokens of H(p_t), nats (0 without router probabilities)
  double router_confidence = 0;      // mean over tokens of max_i p_t,i
  std::vector<std::pair<std::string, double>> terms;  // balancing term values (uncoefficiented)
  double bias_min = 0, bias_max = 0; // aux-loss-free selection bias range

  // Fills load, load_cv, load_max_over_mean and unused_experts from per-expert counts.
  void set_counts(const std::vector<double>& counts);
};

// Sums per-forward statistics over a logging interval (counts add; means are token-weighted).
class MoEStatsAccumulator {
 public:
  void add(const MoEStats& s);
  MoEStats summary() const;  // empty stats when nothing was added
  void reset() { *this = MoEStatsAccumulator(); }
  int64_t forwards() const { return forwards_; }

 private:
  int64_t forwards_ = 0, tokens_ = 0, assignments_ = 0, dropped_ = 0;
  std::vector<double> counts_;
  double entropy_sum_ = 0, confidence_sum_ = 0;
  std::vector<std::pair<std::string, double>> term_sums_;
  double bias_min_ = 0, bias_max_ = 0;
};

// Mutual information I(label; expert) in bits of a joint count matrix [label][expert].
double mutual_information_bits(const std::vector<std::vector<double>>& joint);

// Accumulates labels x experts assignment counts for caller-supplied labels (class, domain, modality,
// game, action). Labels are integers >= 0; the matrix grows as new labels appear.
class RoutingMonitor {
 public:
  explicit RoutingMonitor(int64_t num_experts = 0) : num_experts_(num_experts) {}
  // labels: one per token; each assignment of token t to expert e adds `weight` (default 1) to [label_t][e].
  void add(const std::vector<int64_t>& labels, const std::vector<int64_t>& slot_expert,
           const std::vector<int64_t>& token_offsets);
  void add_count(int64_t label, int64_t expert, double weight = 1.0);
  const std::vector<std::vector<double>>& counts() const { return counts_; }
  int64_t num_experts() const { return num_experts_; }
  double total() const;
  double mutual_information_bits() const { return moe::mutual_information_bits(counts_); }
  // CSV: a header "label,e0,e1,..." then one row per label.
  std::string to_csv() const;
  void reset() { counts_.clear(); }

 private:
  int64_t num_experts_;
  std::vector<std::vector<double>> counts_;
};

// One token's routing: its experts (in slot order), combine weights and whether each assignment was kept.
struct TokenRecord {
  int64_t token = 0;
  std::vector<int64_t> experts;
  std::vector<float> weights;
  std::vector<uint8_t> kept;
};
// The first max_tokens tokens of a record (all when max_tokens < 0).
std::vector<TokenRecord> token_records(const RoutingRecord& record, int64_t max_tokens = -1);
// CSV: "token,slot,expert,weight,kept" one line per assignment.
std::string token_records_csv(const std::vector<TokenRecord>& records);

}  // namespace moelab::moe
