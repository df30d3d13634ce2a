// `moelab run CONFIG [key=value ...] [--run-dir D] [--resume] [--progress MODE] [--print-config]`
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/util/progress.h"
#include "experiments/cli/command.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/run_dir.h"
#include "experiments/lib/trainer.h"

namespace fs = std::filesystem;
using namespace moelab;

namespace {
struct RunArgs {
  std::string config, run_dir, progress = "auto", runs_root = "runs";
  std::vector<std::string> overrides;
  bool resume = false, print_config = false, no_report = false;
};
RunArgs g;
std::vector<std::string> g_argv;

// The newest run directory of an experiment (for --resume without --run-dir).
fs::path latest_run_dir(const fs::path& root, const std::string& name) {
  fs::path dir = root / name;
  fs::path best;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return best;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::exists(e.path() / "config.toml") && (best.empty() || e.path().filename() > best.filename()))
      best = e.path();
  return best;
}

void run_command() {
  using namespace moelab::experiments;
  Config cfg;
  try {
    cfg = load_run_config(g.config, g.overrides);
  } catch (const ConfigError& e) {
    std::cerr << "moelab run: config error:\n" << e.what() << "\n";
    cli::set_exit_code(cli::kBadUsage);
    return;
  }
  if (g.print_config) {
    std::cout << cfg.to_toml(true);
    return;
  }
  TrainerOptions opts;
  opts.resume = g.resume;
  opts.argv = g_argv;
  opts.overrides = g.overrides;
  opts.write_report = !g.no_report;
  opts.progress = parse_progress_mode(g.progress);
  if (!g.run_dir.empty()) {
    opts.run_dir = g.run_dir;
  } else if (g.resume) {
    opts.run_dir = latest_run_dir(g.runs_root, cfg.get_string("name"));
    if (opts.run_dir.empty()) {
      std::cerr << "moelab run: --resume: no run of \"" << cfg.get_string("name") << "\" under " << g.runs_root
                << "; give --run-dir\n";
      cli::set_exit_code(cli::kBadUsage);
      return;
    }
  } else {
    opts.run_dir = default_run_dir(cfg.get_string("name"), g.runs_root);
  }
  try {
    RunOutcome out = run_training(cfg, opts);
    cli::set_exit_code(out.exit_code());
  } catch (const ConfigError& e) {
    std::cerr << "moelab run: config error:\n" << e.what() << "\n";
    cli::set_exit_code(cli::kBadUsage);
  }
}

cli::Registration reg{
    "run", "Train a task from a TOML config (key=value overrides; +key=value adds a key)", [](CLI::App& sub) {
      sub.add_option("config", g.config, "the experiment config (TOML)")->required()->check(CLI::ExistingFile);
      sub.add_option("overrides", g.overrides, "key.sub=value overrides (typed like the key), +key=value to add one");
      sub.add_option("--run-dir", g.run_dir, "run directory (default: runs/<name>/<YYYYMMDD-HHMMSS>)");
      sub.add_option("--runs-root", g.runs_root, "where default run directories go")->capture_default_str();
      sub.add_flag("--resume", g.resume, "continue from the newest complete checkpoint of --run-dir (or of the newest run)");
      sub.add_option("--progress", g.progress, "progress output: auto (bar on a terminal), bar, plain or none")
          ->check(CLI::IsMember({"auto", "bar", "plain", "none"}))
          ->capture_default_str();
      sub.add_flag("--print-config", g.print_config, "print the resolved config with documentation and exit");
      sub.add_flag("--no-report", g.no_report, "do not write report/index.html at the end");
      sub.callback([] { run_command(); });
    }};

// CLI11 does not keep argv; capture it for cmdline.txt before parsing.
struct ArgvCapture {
  ArgvCapture() {
    std::ifstream f("/proc/self/cmdline", std::ios::binary);
    std::string arg;
    while (std::getline(f, arg, '\0')) g_argv.push_back(arg);
  }
} g_capture;
}  // namespace
