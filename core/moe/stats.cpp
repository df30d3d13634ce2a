// Routing statistics, the labels x experts monitor and per-token records.
#include "core/moe/stats.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/moe/balance.h"
#include "core/util/check.h"

namespace moelab::moe {

void MoEStats::set_counts(const std::vector<double>& counts) {
  double total = 0, mx = 0;
  unused_experts = 0;
  for (double c : counts) {
    total += c;
    mx = std::max(mx, c);
    if (c == 0) ++unused_experts;
  }
  load.assign(counts.size(), 0.0);
  for (size_t i = 0; i < counts.size(); ++i) load[i] = total > 0 ? counts[i] / total : 0.0;
  double mean = counts.empty() ? 0.0 : total / static_cast<double>(counts.size());
  load_cv = cv_of(counts);
  load_max_over_mean = mean > 0 ? mx / mean : 0.0;
}

void MoEStatsAccumulator::add(const MoEStats& s) {
  if (counts_.size() < s.load.size()) counts_.resize(s.load.size(), 0.0);
  for (size_t i = 0; i < s.load.size(); ++i) counts_[i] += s.load[i] * static_cast<double>(s.assignments);
  entropy_sum_ += s.router_entropy * static_cast<double>(s.tokens);
  confidence_sum_ += s.router_confidence * static_cast<double>(s.tokens);
  for (auto& [name, v] : s.terms) {
    auto it = std::find_if(term_sums_.begin(), term_sums_.end(), [&](auto& p) { return p.first == name; });
    if (it == term_sums_.end()) term_sums_.emplace_back(name, v);
    else it->second += v;
  }
  bias_min_ = s.bias_min;
  bias_max_ = s.bias_max;
  ++forwards_;
  tokens_ += s.tokens;
  assignments_ += s.assignments;
  dropped_ += s.dropped;
}

MoEStats MoEStatsAccumulator::summary() const {
  MoEStats s;
  if (forwards_ == 0) return s;
  s.tokens = tokens_;
  s.assignments = assignments_;
  s.dropped = dropped_;
  s.set_counts(counts_);
  s.dropped_fraction = assignments_ > 0 ? static_cast<double>(dropped_) / static_cast<double>(assignments_) : 0.0;
  s.router_entropy = tokens_ > 0 ? entropy_sum_ / static_cast<double>(tokens_) : 0.0;
  s.router_confidence = tokens_ > 0 ? confidence_sum_ / static_cast<double>(tokens_) : 0.0;
  for (auto& [name, v] : term_sums_) s.terms.emplace_back(name, v / static_cast<double>(forwards_));
  s.bias_min = bias_min_;
  s.bias_max = bias_max_;
  return s;
}

double mutual_information_bits(const std::vector<std::vector<double>>& joint) {
  double total = 0;
  size_t E = 0;
  for (auto& row : joint) {
    E = std::max(E, row.size());
    for (double c : row) total += c;
  }
  if (total <= 0) return 0.0;
  std::vector<double> pe(E, 0.0);
  for (auto& row : joint)
    for (size_t e = 0; e < row.size(); ++e) pe[e] += row[e] / total;
  double mi = 0;
  for (auto& row : joint) {
    double pl = 0;
    for (double c : row) pl += c / total;
    for (size_t e = 0; e < row.size(); ++e) {
      double p = row[e] / total;
      if (p > 0) mi += p * std::log2(p / (pl * pe[e]));
    }
  }
  return std::max(0.0, mi);
}

void RoutingMonitor::add_count(int64_t label, int64_t expert, double weight) {
  MOELAB_CHECK(label >= 0, "RoutingMonitor: labels must be >= 0, got " << label);
  MOELAB_CHECK(expert >= 0 && expert < num_experts_, "RoutingMonitor: expert " << expert << " of " << num_experts_);
  if (static_cast<int64_t>(counts_.size()) <= label)
    counts_.resize(static_cast<size_t>(label + 1), std::vector<double>(static_cast<size_t>(num_experts_), 0.0));
  counts_[label][expert] += weight;
}

void RoutingMonitor::add(const std::vector<int64_t>& labels, const std::vector<int64_t>& slot_expert,
                         const std::vector<int64_t>& token_offsets) {
  MOELAB_CHECK(labels.size() + 1 == token_offsets.size(), "RoutingMonitor: " << labels.size() << " labels for "
                                                                             << token_offsets.size() - 1 << " tokens");
  for (size_t t = 0; t < labels.size(); ++t)
    for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s)
      if (slot_expert[s] >= 0) add_count(labels[t], slot_expert[s]);
}

double RoutingMonitor::total() const {
  double t = 0;
  for (auto& row : counts_)
    for (double c : row) t += c;
  return t;
}

std::string RoutingMonitor::to_csv() const {
  std::ostringstream os;
  os << "label";
  for (int64_t e = 0; e < num_experts_; ++e) os << ",e" << e;
  os << "\n";
  for (size_t l = 0; l < counts_.size(); ++l) {
    os << l;
    for (double c : counts_[l]) os << "," << c;
    os << "\n";
  }
  return os.str();
}

std::vector<TokenRecord> token_records(const RoutingRecord& rec, int64_t max_tokens) {
  int64_t n = max_tokens < 0 ? rec.num_tokens : std::min(max_tokens, rec.num_tokens);
  std::vector<TokenRecord> out(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) {
    TokenRecord& r = out[t];
    r.token = t;
    for (int64_t s = rec.token_offsets[t]; s < rec.token_offsets[t + 1]; ++s) {
      r.experts.push_back(rec.slot_expert[s]);
      r.weights.push_back(rec.slot_weight.empty() ? 0.f : rec.slot_weight[s]);
      r.kept.push_back(rec.slot_kept.empty() ? 1 : rec.slot_kept[s]);
    }
  }
  return out;
}

std::string token_records_csv(const std::vector<TokenRecord>& records) {
  std::ostringstream os;
  os << "token,slot,expert,weight,kept\n";
  for (auto& r : records)
    for (size_t j = 0; j < r.experts.size(); ++j)
      os << r.token << "," << j << "," << r.experts[j] << "," << r.weights[j] << "," << int(r.kept[j]) << "\n";
  return os.str();
}

}  // namespace moelab::moe
