// `moelab sweep SWEEP.toml [--jobs N] [--out DIR]`: runs a grid of configs x seeds, skipping finished
// runs, then writes the comparison tables (compare.md/.csv/.html, aggregate.md/.csv/.json) into the sweep
// directory.
#include <iostream>

#include "experiments/cli/command.h"
#include "experiments/lib/compare.h"
#include "experiments/lib/compare_aggregate.h"
#include "experiments/lib/sweep.h"
#include "experiments/lib/task.h"

using namespace moelab;

namespace {
struct SweepArgs {
  std::string file, out, progress = "none";
  int jobs = 1;
  bool dry_run = false;
};
SweepArgs g;

void sweep_command() {
  using namespace moelab::experiments;
  SweepSpec spec;
  try {
    spec = load_sweep(g.file, g.out);
  } catch (const ConfigError& e) {
    std::cerr << "moelab sweep: config error:\n" << e.what() << "\n";
    cli::set_exit_code(cli::kBadUsage);
    return;
  }
  std::cout << "sweep " << spec.name << ": " << spec.runs.size() << " runs (" << spec.runs.size() / spec.seeds.size()
            << " points x " << spec.seeds.size() << " seeds) in " << spec.out_dir.string() << "\n";
  if (g.dry_run) {
    for (const auto& r : spec.runs) {
      std::cout << (run_completed(r.run_dir) ? "  finished " : "  to run   ") << r.run_dir.string() << ":";
      for (const auto& o : r.overrides) std::cout << " " << o;
      std::cout << "\n";
    }
    return;
  }
  SweepOptions options;
  options.jobs = g.jobs;
  options.progress = g.progress;
  SweepResult res = run_sweep(spec, options);
  std::cout << "sweep " << spec.name << ": " << res.completed << " completed, " << res.skipped << " skipped, " << res.failed
            << " failed\n";
  std::vector<std::filesystem::path> dirs;
  for (const auto& r : spec.runs)
    if (std::filesystem::exists(r.run_dir / "summary.json")) dirs.push_back(r.run_dir);
  if (!dirs.empty()) {
    CompareTable table = compare_runs(dirs);
    write_compare_files(table, spec.out_dir);
    // IQM with bootstrap intervals per task and across tasks (default options; moelab compare takes others).
    AggregateTable aggregate = aggregate_runs(dirs, AggregateOptions{});
    write_aggregate_files(aggregate, spec.out_dir);
    std::cout << "\n" << compare_markdown(table);
    if (has_intervals(aggregate)) std::cout << "\n" << aggregate_markdown(aggregate);
    std::cout << "\ncomparison: " << (spec.out_dir / "compare.html").string() << ", "
              << (spec.out_dir / "aggregate.md").string() << "\n";
  }
  cli::set_exit_code(res.failed > 0 ? cli::kRunFailed : cli::kOk);
}

cli::Registration reg{"sweep", "Run a grid of overrides x seeds from a sweep TOML, skipping finished runs",
                      [](CLI::App& sub) {
                        sub.add_option("sweep", g.file, "the sweep file (TOML: base, name, seeds, overrides, [grid])")
                            ->required()
                            ->check(CLI::ExistingFile);
                        sub.add_option("-j,--jobs", g.jobs, "runs at a time")->check(CLI::Range(1, 256))->capture_default_str();
                        sub.add_option("--out", g.out, "sweep directory (default: runs/sweeps/<name>)");
                        sub.add_option("--progress", g.progress, "--progress of each run (its output goes to <run_dir>/stdout.txt)")
                            ->check(CLI::IsMember({"auto", "bar", "plain", "none"}))
                            ->capture_default_str();
                        sub.add_flag("--dry-run", g.dry_run, "list the runs and whether they are finished, run nothing");
                        sub.callback([] { sweep_command(); });
                      }};
}  // namespace
