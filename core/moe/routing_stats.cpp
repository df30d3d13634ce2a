// Routing statistics: load, mutual information, tallies, the routing log and its CSV forms.
#include "core/moe/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/io/csv.h"
#include "core/io/text_util.h"
#include "core/util/check.h"

namespace moelab::moe {

LoadStats load_stats(const std::vector<double>& counts) {
  LoadStats s;
  const size_t e = counts.size();
  s.fraction.assign(e, 0.0);
  if (e == 0) return s;
  double total = 0, peak = 0;
  for (double c : counts) {
    total += c;
    peak = std::max(peak, c);
    if (c <= 0) ++s.unused;
  }
  if (total <= 0) return s;
  double mean = total / static_cast<double>(e), var = 0;
  for (size_t i = 0; i < e; ++i) {
    s.fraction[i] = counts[i] / total;
    var += (counts[i] - mean) * (counts[i] - mean);
  }
  var /= static_cast<double>(e);
  s.cv = std::sqrt(var) / mean;
  s.max_over_mean = peak / mean;
  return s;
}

namespace {
// Row and column sums of a rows x cols matrix, and its total.
double marginals(const std::vector<double>& m, int64_t rows, int64_t cols, std::vector<double>& pr,
                 std::vector<double>& pc) {
  pr.assign(static_cast<size_t>(rows), 0.0);
  pc.assign(static_cast<size_t>(cols), 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = m[r * cols + c];
      pr[r] += v;
      pc[c] += v;
      total += v;
    }
  return total;
}
bool is_matrix(const std::vector<double>& m, int64_t rows, int64_t cols) {
  return rows > 0 && cols > 0 && static_cast<int64_t>(m.size()) == rows * cols;
}
}  // namespace

double mutual_information_bits(const std::vector<double>& counts, int64_t rows, int64_t cols) {
  if (!is_matrix(counts, rows, cols)) return 0;
  std::vector<double> pr, pc;
  const double total = marginals(counts, rows, cols, pr, pc);
  if (total <= 0) return 0;
  double mi = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = counts[r * cols + c];
      if (v > 0) mi += (v / total) * std::log2(v * total / (pr[r] * pc[c]));
    }
  return std::max(0.0, mi);
}

double label_entropy_bits(const std::vector<double>& counts, int64_t rows, int64_t cols) {
  if (!is_matrix(counts, rows, cols)) return 0;
  std::vector<double> pr, pc;
  const double total = marginals(counts, rows, cols, pr, pc);
  if (total <= 0) return 0;
  double h = 0;
  for (double p : pr)
    if (p > 0) h -= (p / total) * std::log2(p / total);
  return h;
}

RoutingTally::RoutingTally(int64_t experts) : num_experts(experts), expert_counts(static_cast<size_t>(experts), 0.0) {}

void RoutingTally::add_label_count(int64_t label, int64_t expert, double weight) {
  MOELAB_CHECK(label >= 0, "routing labels must be >= 0, got " << label);
  MOELAB_CHECK(expert >= 0 && expert < num_experts, "routing tally: expert " << expert << " of " << num_experts);
  if (label >= label_rows()) label_counts.resize(static_cast<size_t>((label + 1) * num_experts), 0.0);
  label_counts[label * num_experts + expert] += weight;
}

void RoutingTally::add_labels(const std::vector<int64_t>& labels, const std::vector<int64_t>& slot_expert,
                              const std::vector<int64_t>& token_offsets) {
  MOELAB_CHECK(labels.size() + 1 == token_offsets.size(),
               "routing tally: " << labels.size() << " labels for " << token_offsets.size() - 1 << " tokens");
  for (size_t t = 0; t < labels.size(); ++t)
    for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s)
      if (slot_expert[s] >= 0) add_label_count(labels[t], slot_expert[s]);
}

void RoutingTally::merge(const RoutingTally& o) {
  if (num_experts == 0) *this = RoutingTally(o.num_experts);
  MOELAB_CHECK(o.num_experts == num_experts || o.num_experts == 0,
               "routing tally: merging " << o.num_experts << " experts into " << num_experts);
  forwards += o.forwards;
  tokens += o.tokens;
  assignments += o.assignments;
  dropped += o.dropped;
  for (size_t e = 0; e < o.expert_counts.size(); ++e) expert_counts[e] += o.expert_counts[e];
  if (o.label_counts.size() > label_counts.size()) label_counts.resize(o.label_counts.size(), 0.0);
  for (size_t i = 0; i < o.label_counts.size(); ++i) label_counts[i] += o.label_counts[i];
  entropy_sum += o.entropy_sum;
  confidence_sum += o.confidence_sum;
  if (o.has_bias) {
    has_bias = true;
    bias_min = o.bias_min;
    bias_max = o.bias_max;
  }
}

std::vector<double> RoutingTally::label_matrix(int64_t rows) const {
  std::vector<double> m(static_cast<size_t>(std::max<int64_t>(rows, 0) * num_experts), 0.0);
  std::copy_n(label_counts.begin(), std::min(m.size(), label_counts.size()), m.begin());
  return m;
}

RoutingTally& RoutingLog::layer(const std::string& path, int64_t num_experts) {
  for (auto& [p, t] : layers_)
    if (p == path) {
      MOELAB_CHECK(t.num_experts == num_experts,
                   "routing log: layer '" << path << "' reported " << num_experts << " experts, before " << t.num_experts);
      return t;
    }
  layers_.emplace_back(path, RoutingTally(num_experts));
  return layers_.back().second;
}

const RoutingTally* RoutingLog::find(const std::string& path) const {
  for (const auto& [p, t] : layers_)
    if (p == path) return &t;
  return nullptr;
}

void RoutingLog::merge(const RoutingLog& other) {
  for (const auto& [path, t] : other.layers_) layer(path, t.num_experts).merge(t);
  for (const auto& [path, r] : other.records_) put_record(path, r);
}

void RoutingLog::clear() {
  layers_.clear();
  records_.clear();
}

void RoutingLog::put_record(const std::string& path, RoutingRecord record) {
  for (auto& [p, r] : records_)
    if (p == path) {
      r = std::move(record);
      return;
    }
  records_.emplace_back(path, std::move(record));
}

const RoutingRecord* RoutingLog::record(const std::string& path) const {
  for (const auto& [p, r] : records_)
    if (p == path) return &r;
  return nullptr;
}

namespace {
std::string hex(double v) { return io::hex_double(v); }
double unhex(const nlohmann::json& j) { return io::parse_hex_double(j.get<std::string>()); }
nlohmann::json hex_list(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(hex(x));
  return a;
}
std::vector<double> unhex_list(const nlohmann::json& a) {
  std::vector<double> v;
  for (const auto& x : a) v.push_back(unhex(x));
  return v;
}
}  // namespace

std::string RoutingLog::serialize() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [path, t] : layers_)
    j.push_back({{"path", path},
                 {"experts", t.num_experts},
                 {"forwards", t.forwards},
                 {"tokens", t.tokens},
                 {"sums", hex_list({t.assignments, t.dropped, t.entropy_sum, t.confidence_sum, t.bias_min, t.bias_max})},
                 {"has_bias", t.has_bias},
                 {"expert_counts", hex_list(t.expert_counts)},
                 {"label_counts", hex_list(t.label_counts)}});
  return j.dump();
}

RoutingLog RoutingLog::deserialize(const std::string& text) {
  RoutingLog log;
  for (const auto& j : nlohmann::json::parse(text)) {
    RoutingTally& t = log.layer(j.at("path").get<std::string>(), j.at("experts").get<int64_t>());
    t.forwards = j.at("forwards").get<int64_t>();
    t.tokens = j.at("tokens").get<int64_t>();
    std::vector<double> s = unhex_list(j.at("sums"));
    MOELAB_CHECK(s.size() == 6, "routing log: a saved tally has " << s.size() << " sums, expected 6");
    t.assignments = s[0];
    t.dropped = s[1];
    t.entropy_sum = s[2];
    t.confidence_sum = s[3];
    t.bias_min = s[4];
    t.bias_max = s[5];
    t.has_bias = j.at("has_bias").get<bool>();
    t.expert_counts = unhex_list(j.at("expert_counts"));
    t.label_counts = unhex_list(j.at("label_counts"));
  }
  return log;
}

std::string labels_experts_csv(const std::vector<double>& counts, int64_t rows, int64_t cols,
                               const std::vector<std::string>& label_names) {
  std::vector<std::string> header{"label"};
  for (int64_t e = 0; e < cols; ++e) header.push_back("expert_" + std::to_string(e));
  io::CsvTable table(header);
  for (int64_t r = 0; r < rows; ++r)
    table.row(r < static_cast<int64_t>(label_names.size()) ? label_names[r] : std::to_string(r),
              std::vector<double>(counts.begin() + r * cols, counts.begin() + (r + 1) * cols));
  return table.text();
}

std::string token_records_csv(const RoutingRecord& rec, int64_t max_tokens) {
  const int64_t n = max_tokens < 0 ? rec.num_tokens : std::min(max_tokens, rec.num_tokens);
  io::CsvTable table({"token", "label", "slot", "expert", "weight", "kept"});
  for (int64_t t = 0; t < n; ++t)
    for (int64_t s = rec.token_offsets[t]; s < rec.token_offsets[t + 1]; ++s)
      table.row({std::to_string(t), rec.token_labels.empty() ? "" : std::to_string(rec.token_labels[t]),
                 std::to_string(s - rec.token_offsets[t]), std::to_string(rec.slot_expert[s]),
                 io::csv_number(rec.slot_weight.empty() ? 0.0 : rec.slot_weight[s]),
                 std::to_string(rec.slot_kept.empty() ? 1 : int(rec.slot_kept[s]))});
  return table.text();
}

std::vector<int64_t> top_expert_per_token(const RoutingRecord& rec) {
  std::vector<int64_t> out(static_cast<size_t>(rec.num_tokens), -1);
  for (int64_t t = 0; t < rec.num_tokens; ++t) {
    int64_t best = -1;
    for (int64_t s = rec.token_offsets[t]; s < rec.token_offsets[t + 1]; ++s) {
      const bool kept = rec.slot_kept.empty() || rec.slot_kept[s];
      if (!kept || rec.slot_expert[s] < 0) continue;
      if (best < 0 || (!rec.slot_weight.empty() && rec.slot_weight[s] > rec.slot_weight[best])) best = s;
    }
    out[t] = best < 0 ? -1 : rec.slot_expert[best];
  }
  return out;
}

}  // namespace moelab::moe
