#pragma once
// `moelab compare`/`sweep`'s intervals: per group of runs (differing config keys; seed and the task key
// excluded) and headline metric, IQM and mean with stratified-bootstrap intervals per task (a game) and
// across tasks, optimality gap, P(improvement) over the first group; each row with its protocol preset.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "experiments/lib/aggregate_stats.h"

namespace moelab::experiments {

struct AggregateOptions {
  // The config key (or, failing that, summary.json string field) naming each run's task; empty: the
  // first of kDefaultStratifyKeys that some run has; none found: all runs of a group form one task.
  // A run whose task value is "all" (one network for every game) counts in each task T for which its
  // summary's metrics hold "<headline metric>/T" (eval/return/breakout), with that value.
  std::string stratify_by;
  int64_t min_runs = 5;  // intervals only when every task of the row has at least this many completed runs
  BootstrapOptions bootstrap;
  // Per task value: (low, high) for the normalized score (x - low) / (high - low) used across tasks;
  // a task without one uses the lowest and highest score of any compared run in that task.
  std::map<std::string, std::pair<double, double>> reference;
};

inline const std::vector<std::string> kDefaultStratifyKeys = {"env.game", "rl.game", "game"};
inline const std::string kAllTasks = "all";
// Where a run's protocol preset is read from (the RL tasks' key is env.protocol).
inline const std::vector<std::string> kProtocolKeys = {"env.protocol", "rl.protocol"};

struct AggregateRow {
  size_t group = 0;                     // index into AggregateTable::groups
  std::string metric;
  std::string task;                     // a task value, or "all" (across tasks, normalized scores)
  int64_t tasks = 1;                    // tasks pooled in this row
  int64_t runs = 0;                     // completed runs with the metric, over the row's tasks
  int64_t fewest_runs = 0;              // of any one task of the row
  bool intervals = false;               // fewest_runs >= min_runs: the intervals below are set
  Interval iqm, mean;                   // of raw scores for one task, of normalized scores for "all"
  Interval optimality_gap;              // "all" rows with more than one task: mean shortfall below 1
  bool has_improvement = false;         // not the first group, and both have runs in every task of the row
  Interval improvement;                 // P(this group's run > the first group's run), averaged over tasks
};

struct AggregateGroup {
  std::vector<std::string> key_values;  // one per AggregateTable::keys, as TOML value text
  std::string protocol;                 // env.protocol / rl.protocol of its runs ("" when unset)
  int64_t incomplete = 0;               // runs without a completed summary
};

struct AggregateTable {
  std::string stratify_by;              // the key used ("" when none)
  std::vector<std::string> keys;        // differing config keys (seed, name, notes.*, the task key excluded)
  std::vector<std::string> tasks;       // task values in first-seen order
  std::vector<std::string> metrics;     // headline metrics in first-seen order
  std::vector<AggregateGroup> groups;
  std::vector<AggregateRow> rows;       // per group, per metric: each task, then "all" when > 1 task
  std::map<std::string, std::map<std::string, std::pair<double, double>>> normalization;  // metric -> task -> range
  bool any_protocol = false;
  AggregateOptions options;
};

// Throws moelab::Error when no run is given or a run's summary.json cannot be read.
AggregateTable aggregate_runs(const std::vector<std::filesystem::path>& run_dirs, const AggregateOptions& options);

// "12.3 [10.1, 14.2]"; without intervals the point alone.
std::string format_interval(const Interval& v, bool intervals);
std::string aggregate_markdown(const AggregateTable& t);
std::string aggregate_csv(const AggregateTable& t);
std::string aggregate_json(const AggregateTable& t);
// Writes aggregate.md, aggregate.csv and aggregate.json into `out_dir`.
void write_aggregate_files(const AggregateTable& t, const std::filesystem::path& out_dir);
// Whether any row has intervals (what the commands print).
bool has_intervals(const AggregateTable& t);

}  // namespace moelab::experiments
