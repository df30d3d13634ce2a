#pragma once
// Routing statistics (docs/moe.md §5), one implementation for the MoE layer, the trainer and the report:
// load statistics, mutual information, per-layer tallies keyed by module path, and routing records.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace moelab::moe {

// A routing decision (docs/moe.md §5 record/replay): the experts each token went to and which assignments
// were kept. Replaying it holds the expert choice fixed while the combine weights are recomputed.
struct RoutingRecord {
  int64_t num_tokens = 0, num_experts = 0;
  std::vector<int64_t> token_offsets;  // (T+1)
  std::vector<int64_t> slot_expert;    // (S)
  std::vector<uint8_t> slot_kept;      // (S) 0 where capacity dropped the assignment
  std::vector<float> slot_weight;      // (S) combine weights when recorded
  std::vector<int64_t> token_labels;   // (T) the batch's routing labels when it had any, else empty
};

struct LoadStats {
  std::vector<double> fraction;  // (E) share of all assignments; all 0 when nothing was routed
  double cv = 0;                 // population std / mean of the counts
  double max_over_mean = 0;      // busiest expert's count / mean count
  int64_t unused = 0;            // experts with no assignment
};
LoadStats load_stats(const std::vector<double>& counts);

// I(label; expert) in bits of a labels x experts count matrix (row-major); 0 for an empty matrix.
double mutual_information_bits(const std::vector<double>& counts, int64_t rows, int64_t cols);
// Entropy of the label marginal in bits: the most that I(label; expert) can reach.
double label_entropy_bits(const std::vector<double>& counts, int64_t rows, int64_t cols);

// One MoE layer's routing summed over a window: a forward, a micro-batch, a logging interval, an evaluation.
struct RoutingTally {
  int64_t num_experts = 0;
  int64_t forwards = 0, tokens = 0;
  double assignments = 0, dropped = 0;  // (token, expert) choices before capacity, and those dropped
  std::vector<double> expert_counts;    // (E) choices per expert before drops (Soft MoE: dispatch mass)
  std::vector<double> label_counts;     // (labels x E) row-major; rows grow as labels appear
  double entropy_sum = 0, confidence_sum = 0;  // sums over tokens of H(p_t) (nats) and max_e p_t,e
  bool has_bias = false;
  double bias_min = 0, bias_max = 0;    // the selection bias range at the latest forward

  explicit RoutingTally(int64_t experts = 0);
  int64_t label_rows() const { return num_experts > 0 ? static_cast<int64_t>(label_counts.size()) / num_experts : 0; }
  void add_label_count(int64_t label, int64_t expert, double weight = 1.0);
  // labels: one per token; each kept or dropped choice of token t adds 1 to [labels[t]][expert].
  void add_labels(const std::vector<int64_t>& labels, const std::vector<int64_t>& slot_expert,
                  const std::vector<int64_t>& token_offsets);
  void merge(const RoutingTally& other);

  LoadStats load() const { return load_stats(expert_counts); }
  double dropped_fraction() const { return assignments > 0 ? dropped / assignments : 0.0; }
  double router_entropy() const { return tokens > 0 ? entropy_sum / static_cast<double>(tokens) : 0.0; }
  double router_confidence() const { return tokens > 0 ? confidence_sum / static_cast<double>(tokens) : 0.0; }
  double label_mi_bits() const { return mutual_information_bits(label_counts, label_rows(), num_experts); }
  // The labels x experts matrix with exactly `rows` rows (padded with zeros or cut).
  std::vector<double> label_matrix(int64_t rows) const;
};

// Tallies of every MoE layer of a model, keyed by module path, in the order the layers first reported.
class RoutingLog {
 public:
  explicit RoutingLog(bool keep_records = false) : keep_records_(keep_records) {}
  RoutingTally& layer(const std::string& path, int64_t num_experts);
  const RoutingTally* find(const std::string& path) const;
  const std::vector<std::pair<std::string, RoutingTally>>& layers() const { return layers_; }
  bool empty() const { return layers_.empty(); }
  void merge(const RoutingLog& other);
  void clear();

  // With keep_records, each layer's latest routing decision is kept (per-token samples, patch maps).
  bool keep_records() const { return keep_records_; }
  void put_record(const std::string& path, RoutingRecord record);
  const RoutingRecord* record(const std::string& path) const;

  // Exact text form (hex floats) for checkpoints, so a resumed run logs what the uninterrupted one logs.
  std::string serialize() const;
  static RoutingLog deserialize(const std::string& text);

 private:
  bool keep_records_;
  std::vector<std::pair<std::string, RoutingTally>> layers_;
  std::vector<std::pair<std::string, RoutingRecord>> records_;
};

// CSV of a labels x experts matrix: "label,expert_0,..." then one row per label (names, else the index).
std::string labels_experts_csv(const std::vector<double>& counts, int64_t rows, int64_t cols,
                               const std::vector<std::string>& label_names);

// The first max_tokens tokens of a record (all when max_tokens < 0) as CSV
// "token,label,slot,expert,weight,kept", one line per assignment (label empty when the record has none).
std::string token_records_csv(const RoutingRecord& record, int64_t max_tokens = -1);

// The highest-weight kept expert of each token (-1 when all its choices were dropped).
std::vector<int64_t> top_expert_per_token(const RoutingRecord& record);

}  // namespace moelab::moe
