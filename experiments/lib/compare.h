#pragma once
// `moelab compare`: final metrics of runs side by side, grouped by the config keys that differ (seed, name,
// notes.* excluded; env.protocol / rl.protocol always shown), mean ± sample std per metric over the seeds
// of a group. Interquartile means with bootstrap intervals: compare_aggregate.h.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moelab::experiments {

struct CompareRow {
  std::vector<std::string> key_values;  // one per CompareTable::keys, as TOML value text
  int64_t runs = 0;                     // completed runs in the group
  int64_t incomplete = 0;               // runs in the group without a completed summary
  std::vector<double> mean, std;        // one per CompareTable::metrics (NaN when no run has it)
  std::vector<int64_t> count;           // runs that reported each metric
};

struct CompareTable {
  std::vector<std::string> keys;     // differing config keys
  std::vector<std::string> metrics;  // headline metrics, final_train_loss, then label MI per layer
  std::vector<CompareRow> rows;      // in the order the groups are first met (runs sorted by path)
  std::vector<std::filesystem::path> run_dirs;
};

// Every directory holding summary.json at or below each of `paths` (a run or a sweep directory).
std::vector<std::filesystem::path> find_run_dirs(const std::vector<std::filesystem::path>& paths);
// Throws moelab::Error when no run is found.
CompareTable compare_runs(const std::vector<std::filesystem::path>& run_dirs);

std::string compare_markdown(const CompareTable& t);
std::string compare_csv(const CompareTable& t);
std::string compare_html(const CompareTable& t);
// Writes compare.md, compare.csv and compare.html into `out_dir`.
void write_compare_files(const CompareTable& t, const std::filesystem::path& out_dir);
// "0.01234 ± 0.00056" (4 significant digits; the mean alone when fewer than 2 runs).
std::string format_mean_std(double mean, double std, int64_t count);

}  // namespace moelab::experiments
