#pragma once
// Training scalars and routing summed over one logging interval, then written as one metrics record
// (averages; per-layer load statistics and label/expert mutual information keyed by module path). Its
// state goes into checkpoints so that a resumed run logs exactly what the uninterrupted run logs.
#include <cstdint>
#include <map>
#include <string>

#include "core/io/metrics.h"
#include "core/moe/routing_stats.h"

namespace moelab::experiments {

class IntervalStats {
 public:
  // Averaged over the interval; logged under `name` ("train/loss").
  void add_scalar(const std::string& name, double value);
  // Averaged per layer; logged as <name>/<layer path> ("moe/switch_loss/blocks.1.moe").
  void add_layer_scalar(const std::string& name, const std::string& layer, double value);
  void add_routing(const moe::RoutingLog& routing) { routing_.merge(routing); }
  bool empty() const { return scalars_.empty() && layers_.empty() && routing_.empty(); }
  void clear();
  // Mean of a scalar over the interval (NaN when never added).
  double mean(const std::string& name) const;

  // The averages, and per layer moe/load_cv, moe/load_max_over_mean, moe/unused_experts,
  // moe/dropped_fraction, moe/router_entropy, moe/router_confidence, moe/bias_range (with a selection bias),
  // moe/label_mi_bits (with labels), and moe/load {"<path>": [fractions]} as JSON.
  io::MetricsRecord to_record(int64_t step) const;

  // Exact text form (hex floats) for checkpoint metadata.
  std::string serialize() const;
  static IntervalStats deserialize(const std::string& text);

 private:
  struct Sum {
    double sum = 0;
    int64_t count = 0;
  };
  std::map<std::string, Sum> scalars_;
  std::map<std::string, std::map<std::string, Sum>> layers_;
  moe::RoutingLog routing_;
};

}  // namespace moelab::experiments
