// `moelab compare RUN_DIR... [--out DIR]`: final metrics of runs (or sweep directories) side by side,
// grouped by the config keys that differ, with mean ± std over seeds.
#include <iostream>

#include "experiments/cli/command.h"
#include "experiments/lib/compare.h"

using namespace moelab;
namespace fs = std::filesystem;

namespace {
struct CompareArgs {
  std::vector<std::string> dirs;
  std::string out;
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

void compare_command() {
  using namespace moelab::experiments;
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
  std::cout << compare_markdown(table) << "\ntables: " << (out / "compare.md").string() << ", "
            << (out / "compare.csv").string() << ", " << (out / "compare.html").string() << "\n";
}

cli::Registration reg{"compare", "Compare final metrics of runs or sweeps (mean ± std over seeds)", [](CLI::App& sub) {
                        sub.add_option("run_dirs", g.dirs, "run directories or directories holding runs")
                            ->required()
                            ->check(CLI::ExistingDirectory);
                        sub.add_option("--out", g.out, "where compare.md/.csv/.html go (default: the runs' common parent)");
                        sub.callback([] { compare_command(); });
                      }};
}  // namespace
