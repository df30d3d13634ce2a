// The `moelab` command line: help for each command, exit codes 0 / 1 (run failed) / 2 (bad usage or
// config), --print-config, and the NaN/Inf guard naming the step and the first offending tensor.
#include <gtest/gtest.h>

#include "core/backend/backend.h"
#include "core/backend/device_select.h"
#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

fs::path tiny_config_file(const std::string& name, const std::string& text) {
  fs::path p = fresh_dir("cli", name) / "tiny.toml";
  write_text(p, text);
  return p;
}

TEST(Cli, HelpListsEveryCommand) {
  CommandResult r = run_moelab({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* cmd : {"run", "sweep", "report", "compare", "eval", "bench"})
    EXPECT_NE(r.output.find(std::string("  ") + cmd), std::string::npos) << cmd << "\n" << r.output;
}

TEST(Cli, EachCommandHasHelp) {
  struct Case {
    const char* cmd;
    std::vector<const char*> words;
  };
  for (const Case& c : {Case{"run", {"--run-dir", "--resume", "--progress", "--print-config", "overrides"}},
                        Case{"sweep", {"--jobs", "--out"}}, Case{"report", {"run_dir"}},
                        Case{"compare", {"run_dirs", "--out"}}, Case{"eval", {"--checkpoint"}}}) {
    CommandResult r = run_moelab({c.cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << c.cmd << "\n" << r.output;
    for (const char* w : c.words) EXPECT_NE(r.output.find(w), std::string::npos) << c.cmd << ": " << w << "\n" << r.output;
  }
}

TEST(Cli, BadUsageExitsWith2) {
  EXPECT_EQ(run_moelab({}).exit_code, 2);
  EXPECT_EQ(run_moelab({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_moelab({"run"}).exit_code, 2);
  EXPECT_EQ(run_moelab({"run", "/nonexistent/config.toml"}).exit_code, 2);
  fs::path cfg = tiny_config_file("usage", tiny_config());
  EXPECT_EQ(run_moelab({"run", cfg.string(), "--progress", "sometimes"}).exit_code, 2);
  fs::path not_a_run = fresh_dir("cli", "empty");
  CommandResult r = run_moelab({"report", not_a_run.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("has no metrics.jsonl"), std::string::npos) << r.output;
}

TEST(Cli, ConfigErrorsExitWith2AndNameTheirPlace) {
  std::string text = tiny_config();
  text.replace(text.find("top_k = 1"), 9, "topk = 1");
  fs::path cfg = tiny_config_file("config_error", text);
  CommandResult r = run_moelab({"run", cfg.string(), "train.stepz=3", "--run-dir", (cfg.parent_path() / "run").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(cfg.string() + ":17:1: unknown key 'model.moe.topk'; did you mean 'model.moe.top_k'?"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("<override 1: train.stepz=3>: unknown key 'train.stepz'; did you mean 'train.steps'?"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(cfg.parent_path() / "run"));  // nothing is written for a bad config
}

// `device` picks where the model trains. Without a usable CUDA device "cuda:0" is a config error naming
// the override; with one, a short run trains there and ends with a finite loss.
TEST(Cli, DeviceKeySelectsWhereTheModelTrains) {
  fs::path cfg = tiny_config_file("device", tiny_config());
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "device=cuda:0", "train.steps=20", "--run-dir", run.string(),
                                "--progress", "none", "--no-report"});
  if (moelab::cuda_device_count() == 0) {
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("<override 1: device=cuda:0>: device = \"cuda:0\""), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(moelab::cuda_built() ? "no CUDA device" : "moelab was built without it"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find(".cpp:"), std::string::npos) << "no source location in a config error\n" << r.output;
    EXPECT_FALSE(fs::exists(run / "metrics.jsonl"));
  } else {
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("device: cuda:0 "), std::string::npos) << r.output;
    json s = json::parse(read_text(run / "summary.json"));
    EXPECT_EQ(s["status"], "completed");
  }
  CommandResult bad = run_moelab({"run", cfg.string(), "device=gpu", "--run-dir", (run.string() + "_bad")});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("<override 1: device=gpu>: bad device 'gpu'"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("expected cpu, cuda or cuda:N"), std::string::npos) << bad.output;
}

TEST(Cli, WorkersNeedATaskThatRunsThemAndEnoughMicroBatches) {
  fs::path cfg = tiny_config_file("workers", tiny_config());
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "train.workers=2", "--run-dir", run.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("<override 1: train.workers=2>: train.workers = 2 exceeds train.grad_accum = 1"),
            std::string::npos) << r.output;
  r = run_moelab({"run", cfg.string(), "train.workers=2", "train.grad_accum=2", "--run-dir", run.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("<override 1: train.workers=2>: train.workers = 2: task \"toy_mixture\" does not run "
                          "concurrent micro-batches"),
            std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run)) << "a refused config left a run directory";
}

TEST(Cli, PrintConfigShowsTheResolvedConfigWithDocumentation) {
  fs::path cfg = tiny_config_file("print", tiny_config());
  CommandResult r = run_moelab({"run", cfg.string(), "model.moe.top_k=2", "--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[model.moe]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("top_k = 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("num_experts = 4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("# experts per token"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("# optimizer steps to train for"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(cfg.parent_path() / "runs"));
}

// Every shipped config must resolve against its task's schema: a renamed key would otherwise surface
// only when someone runs that config.
TEST(Cli, EveryShippedConfigAndSweepResolves) {
  const fs::path configs = fs::path(MOELAB_SOURCE_DIR) / "configs";
  int checked = 0;
  for (const auto& e : fs::directory_iterator(configs)) {
    if (e.path().extension() != ".toml") continue;
    CommandResult r = run_moelab({"run", e.path().string(), "--print-config"});
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.output;
    EXPECT_NE(r.output.find("task = "), std::string::npos) << e.path() << "\n" << r.output;
    ++checked;
  }
  const fs::path out = fresh_dir("cli", "sweeps");
  for (const auto& e : fs::directory_iterator(configs / "sweeps")) {
    if (e.path().extension() != ".toml") continue;
    CommandResult r = run_moelab({"sweep", e.path().string(), "--dry-run", "--out", (out / e.path().stem()).string()});
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.output;
    ++checked;
  }
  EXPECT_GE(checked, 6) << "configs/ lost its configs";
}

TEST(Cli, NanGuardStopsWithTheStepAndTheOffendingTensor) {
  fs::path cfg = tiny_config_file("nan", tiny_config());
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "debug.nan_at_step=5", "--run-dir", run.string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("step 5: non-finite loss (nan); first offending tensor: loss"), std::string::npos) << r.output;
  json s = json::parse(read_text(run / "summary.json"));
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(s["steps"], 4);
  EXPECT_NE(s["error"].get<std::string>().find("step 5"), std::string::npos);
}

}  // namespace
