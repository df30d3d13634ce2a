#include "experiments/lib/aggregate_stats.h"

#include <algorithm>
#include <cmath>

#include "core/util/check.h"
#include "core/util/rng.h"

namespace moelab::experiments {

double interquartile_mean(std::vector<double> values) {
  MOELAB_CHECK(!values.empty(), "interquartile mean of no values");
  std::sort(values.begin(), values.end());
  const size_t cut = values.size() / 4;  // floor(0.25 n) from each end
  double sum = 0;
  for (size_t i = cut; i < values.size() - cut; ++i) sum += values[i];
  return sum / static_cast<double>(values.size() - 2 * cut);
}

double percentile_of_sorted(const std::vector<double>& sorted, double p) {
  MOELAB_CHECK(!sorted.empty(), "percentile of no values");
  MOELAB_CHECK(p >= 0 && p <= 100, "percentile " << p << " is outside [0, 100]");
  const double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double mean_of(const std::vector<double>& values) {
  MOELAB_CHECK(!values.empty(), "mean of no values");
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double median_of(std::vector<double> values) {
  MOELAB_CHECK(!values.empty(), "median of no values");
  std::sort(values.begin(), values.end());
  return percentile_of_sorted(values, 50);
}

double optimality_gap(const std::vector<double>& values, double threshold) {
  MOELAB_CHECK(!values.empty(), "optimality gap of no values");
  double sum = 0;
  for (double v : values) sum += std::max(0.0, threshold - v);
  return sum / static_cast<double>(values.size());
}

namespace {
std::vector<double> flatten(const TaskScores& scores) {
  std::vector<double> all;
  for (const auto& task : scores) all.insert(all.end(), task.begin(), task.end());
  return all;
}
}  // namespace

double iqm_over_tasks(const TaskScores& scores) { return interquartile_mean(flatten(scores)); }
double mean_over_tasks(const TaskScores& scores) { return mean_of(flatten(scores)); }

double probability_of_improvement(const TaskScores& x, const TaskScores& y) {
  MOELAB_CHECK(!x.empty() && x.size() == y.size(),
               "probability of improvement needs the same tasks on both sides (" << x.size() << " vs " << y.size() << ")");
  double total = 0;
  for (size_t t = 0; t < x.size(); ++t) {
    MOELAB_CHECK(!x[t].empty() && !y[t].empty(), "probability of improvement: task " << t << " has no runs on one side");
    double wins = 0;
    for (double a : x[t])
      for (double b : y[t]) wins += a > b ? 1.0 : (a == b ? 0.5 : 0.0);
    total += wins / static_cast<double>(x[t].size() * y[t].size());
  }
  return total / static_cast<double>(x.size());
}

namespace {

void check_tasks(const TaskScores& scores) {
  MOELAB_CHECK(!scores.empty(), "bootstrap of no tasks");
  for (size_t t = 0; t < scores.size(); ++t) MOELAB_CHECK(!scores[t].empty(), "bootstrap: task " << t << " has no runs");
}

// Fills `out` with one resample of `scores`: every task's runs drawn with replacement from that task.
void resample(const TaskScores& scores, RngStream& rng, TaskScores& out) {
  out.resize(scores.size());
  for (size_t t = 0; t < scores.size(); ++t) {
    const auto& runs = scores[t];
    out[t].resize(runs.size());
    for (auto& v : out[t]) v = runs[rng.below(runs.size())];
  }
}

Interval percentile_interval(double point, std::vector<double>& replicates, double confidence) {
  MOELAB_CHECK(confidence > 0 && confidence < 1, "confidence " << confidence << " is outside (0, 1)");
  std::sort(replicates.begin(), replicates.end());
  const double tail = (1 - confidence) / 2 * 100;
  return {point, percentile_of_sorted(replicates, tail), percentile_of_sorted(replicates, 100 - tail)};
}

}  // namespace

Interval stratified_bootstrap(const TaskScores& scores, const TaskAggregate& aggregate, const BootstrapOptions& options) {
  check_tasks(scores);
  MOELAB_CHECK(options.replicates > 0, "bootstrap replicates " << options.replicates << " must be > 0");
  RngStream rng(options.seed, "bootstrap");
  std::vector<double> replicates(static_cast<size_t>(options.replicates));
  TaskScores sample;
  for (auto& r : replicates) {
    resample(scores, rng, sample);
    r = aggregate(sample);
  }
  return percentile_interval(aggregate(scores), replicates, options.confidence);
}

Interval stratified_bootstrap(const TaskScores& x, const TaskScores& y, const PairAggregate& aggregate,
                              const BootstrapOptions& options) {
  check_tasks(x);
  check_tasks(y);
  MOELAB_CHECK(options.replicates > 0, "bootstrap replicates " << options.replicates << " must be > 0");
  RngStream rng(options.seed, "bootstrap");
  std::vector<double> replicates(static_cast<size_t>(options.replicates));
  TaskScores sx, sy;
  for (auto& r : replicates) {
    resample(x, rng, sx);
    resample(y, rng, sy);
    r = aggregate(sx, sy);
  }
  return percentile_interval(aggregate(x, y), replicates, options.confidence);
}

}  // namespace moelab::experiments
