// `moelab compare RUN_DIR... [--out DIR] [--stratify-by KEY] [--min-runs N] [--bootstrap-reps N]
// [--bootstrap-seed S] [--reference TASK=LOW:HIGH ...]`: final metrics of runs (or sweep directories) side
// by side, grouped by the config keys that differ, with mean ± std over seeds; then per task (game) and
// across tasks the IQM with stratified-bootstrap confidence intervals (compare_aggregate.h).
#include <iostream>

#include "experiments/cli/command.h"
#include "experiments/lib/compare.h"
#include "experiments/lib/compare_aggregate.h"
#include "core/util/check.h"

using namespace moelab;
namespace fs = std::filesystem;

namespace {
struct CompareArgs {
  std::vector<std::string> dirs;
  std::string out;
  std::string stratify_by;
  int64_t min_runs = 5, replicates = 10000;
  uint64_t bootstrap_seed = 0;
  std::vector<std::string> references;
};
CompareArgs g;

// The deepest directory containing every run (where the table goes by default).
fs::path common_parent(const std::vector<fs::path>& dirs) {
  fs::path common = dirs.front().parent_path();
  for (const auto& d : dirs) {
    fs::path p = d.parent_path();
    while (!common.empty() && std::mismatch(common.begin(), common.end(), p.begin(), p.end()).first != common.end())
      common = common.parent_path();
  }
  return common.empty() ? fs::path(".") : common;
}

// "breakout=0:28" -> (breakout, (0, 28)).
std::pair<std::string, std::pair<double, double>> parse_reference(const std::string& text) {
  const size_t eq = text.rfind('='), colon = text.rfind(':');
  MOELAB_CHECK(eq != std::string::npos && colon != std::string::npos && colon > eq,
               "--reference " << text << ": expected TASK=LOW:HIGH (e.g. breakout=0:28)");
  double low = 0, high = 0;
  try {
    low = std::stod(text.substr(eq + 1, colon - eq - 1));
    high = std::stod(text.substr(colon + 1));
  } catch (const std::exception&) {
    MOELAB_FAIL("--reference " << text << ": LOW and HIGH must be numbers");
  }
  MOELAB_CHECK(high > low, "--reference " << text << ": HIGH must exceed LOW");
  return {text.substr(0, eq), {low, high}};
}

void compare_command() {
  using namespace moelab::experiments;
  AggregateOptions options;
  options.stratify_by = g.stratify_by;
  options.min_runs = g.min_runs;
  options.bootstrap.replicates = g.replicates;
  options.bootstrap.seed = g.bootstrap_seed;
  for (const auto& r : g.references) {
    try {
      options.reference.insert(parse_reference(r));
    } catch (const moelab::Error& e) {
      std::cerr << "moelab compare: " << e.message() << "\n";
      cli::set_exit_code(cli::kBadUsage);
      return;
    }
  }
  std::vector<fs::path> roots(g.dirs.begin(), g.dirs.end());
  std::vector<fs::path> runs = find_run_dirs(roots);
  if (runs.empty()) {
    std::cerr << "moelab compare: no run directories (with summary.json) under the given paths\n";
    cli::set_exit_code(cli::kBadUsage);
    return;
  }
  CompareTable table = compare_runs(runs);
  fs::path out = g.out.empty() ? (roots.size() == 1 && !fs::exists(roots[0] / "summary.json") ? roots[0] : common_parent(runs))
                               : fs::path(g.out);
  write_compare_files(table, out);
  AggregateTable aggregate = aggregate_runs(runs, options);
  write_aggregate_files(aggregate, out);
  std::cout << compare_markdown(table);
  if (has_intervals(aggregate)) std::cout << "\n" << aggregate_markdown(aggregate);
  std::cout << "\ntables: " << (out / "compare.md").string() << ", " << (out / "compare.csv").string() << ", "
            << (out / "compare.html").string() << ", " << (out / "aggregate.md").string() << ", "
            << (out / "aggregate.csv").string() << ", " << (out / "aggregate.json").string() << "\n";
}

cli::Registration reg{"compare", "Compare final metrics of runs or sweeps (mean ± std; IQM with bootstrap intervals per task)", [](CLI::App& sub) {
                        sub.add_option("run_dirs", g.dirs, "run directories or directories holding runs")
                            ->required()
                            ->check(CLI::ExistingDirectory);
                        sub.add_option("--out", g.out, "where compare.* and aggregate.* go (default: the runs' common parent)");
                        sub.add_option("--stratify-by", g.stratify_by,
                                       "config key (or summary.json field) naming each run's task, e.g. rl.game (default: "
                                       "the first of rl.game, env.game, game that a run has)");
                        sub.add_option("--min-runs", g.min_runs, "completed runs per task needed for intervals")
                            ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
                            ->capture_default_str();
                        sub.add_option("--bootstrap-reps", g.replicates, "bootstrap replicates")
                            ->check(CLI::Range(int64_t{100}, int64_t{10000000}))
                            ->capture_default_str();
                        sub.add_option("--bootstrap-seed", g.bootstrap_seed, "seed of the bootstrap draws")->capture_default_str();
                        sub.add_option("--reference", g.references,
                                       "TASK=LOW:HIGH: score range that normalizes the task across tasks (default: the "
                                       "lowest and highest compared run)");
                        sub.callback([] { compare_command(); });
                      }};
}  // namespace
