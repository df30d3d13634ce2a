#pragma once
// Scores over runs and tasks with intervals (Agarwal et al., NeurIPS 2021): interquartile mean, optimality
// gap, probability of improvement, and percentile intervals of the stratified bootstrap (runs resampled
// with replacement within each task). Scores come per task: scores[task][run]; tasks may differ in runs.
#include <cstdint>
#include <functional>
#include <vector>

namespace moelab::experiments {

using TaskScores = std::vector<std::vector<double>>;  // [task][run]

// Mean of the middle half: the sorted values without floor(n/4) at each end (scipy's
// trim_mean(x, 0.25), which rliable's IQM uses). Throws moelab::Error for no values.
double interquartile_mean(std::vector<double> values);
// The p-th percentile (p in [0, 100]) of sorted values, interpolating linearly between order statistics
// (numpy's default "linear" method).
double percentile_of_sorted(const std::vector<double>& sorted, double p);
double mean_of(const std::vector<double>& values);
double median_of(std::vector<double> values);
// Mean of max(0, threshold - x): how far runs fall short of `threshold` (1 for normalized scores).
double optimality_gap(const std::vector<double>& values, double threshold);

// Aggregates over all runs of all tasks, flattened (so a task weighs by its runs).
double iqm_over_tasks(const TaskScores& scores);
double mean_over_tasks(const TaskScores& scores);
// P(X > Y): per task, over all pairs of an X run and a Y run, 1 when x > y, 1/2 when equal, 0 otherwise
// (the Mann-Whitney U statistic over m*n); then averaged over the tasks. x and y have the same tasks.
double probability_of_improvement(const TaskScores& x, const TaskScores& y);

struct Interval {
  double point = 0;  // the aggregate of the scores themselves
  double low = 0, high = 0;
};

struct BootstrapOptions {
  int64_t replicates = 10000;
  double confidence = 0.95;  // interval between the (1-c)/2 and (1+c)/2 percentiles of the replicates
  uint64_t seed = 0;         // the draws come from RngStream(seed, "bootstrap")
};

using TaskAggregate = std::function<double(const TaskScores&)>;
using PairAggregate = std::function<double(const TaskScores&, const TaskScores&)>;

// Each replicate draws, for every task independently, as many runs as the task has, uniformly with
// replacement from that task's runs, and applies `aggregate`; the interval is the percentiles of the
// replicates. Deterministic for a seed. Throws moelab::Error when a task has no runs.
Interval stratified_bootstrap(const TaskScores& scores, const TaskAggregate& aggregate, const BootstrapOptions& options);
// The same for two independent samples (x's runs and y's runs each resampled within each task).
Interval stratified_bootstrap(const TaskScores& x, const TaskScores& y, const PairAggregate& aggregate,
                              const BootstrapOptions& options);

}  // namespace moelab::experiments
