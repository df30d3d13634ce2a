#pragma once
// Training scalars summed over one logging interval, then written as one metrics record (averages,
// per-layer load statistics from summed expert counts, label/expert mutual information). Its state
// goes into checkpoints so that a resumed run logs exactly what the uninterrupted run logs.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/io/metrics.h"
#include "experiments/lib/task.h"

namespace moelab::experiments {

class IntervalStats {
 public:
  // Averaged over the interval; logged under `name` ("train/loss").
  void add_scalar(const std::string& name, double value);
  // Averaged per layer; logged as <name>/layer_<layer> ("moe/load_balance").
  void add_layer_scalar(const std::string& name, int layer, double value);
  // Expert counts and label counts summed; stats averaged as moe/<stat>/layer_<layer>.
  void add_routing(const LayerRouting& routing);
  bool empty() const { return scalars_.empty() && layers_.empty() && routing_.empty(); }
  void clear();
  // Mean of a scalar over the interval (NaN when never added).
  double mean(const std::string& name) const;

  // moe/load_cv, moe/load_max_over_mean, moe/unused_experts, moe/label_mi_bits (when labels are
  // given) per layer, the averages, and moe/load {"layer_i": [fractions]} as JSON.
  io::MetricsRecord to_record(int64_t step) const;

  // Exact text form (hex floats) for checkpoint metadata.
  std::string serialize() const;
  static IntervalStats deserialize(const std::string& text);

 private:
  struct Sum {
    double sum = 0;
    int64_t count = 0;
  };
  struct Routing {
    std::vector<double> expert_counts, label_counts;
  };
  std::map<std::string, Sum> scalars_;
  std::map<std::string, std::map<int, Sum>> layers_;
  std::map<int, Routing> routing_;
};

// Splits an aux-loss or stat name that names a layer: "layer_1/load_balance", "blocks.1.ffn.load_balance"
// and "blocks.1.moe.router_z" give (1, "load_balance") / (1, "router_z"). layer = -1 when none is named.
std::pair<int, std::string> split_layer_name(const std::string& name);

}  // namespace moelab::experiments
