// The `moelab` command line: help for each command, exit codes 0 / 1 (run failed) / 2 (bad usage or
// config), --print-config, the NaN/Inf guard naming the step and the first offending tensor (or skipping the
// step with train.on_non_finite = "skip"), optim.param_groups, the train.examples budget and train.workers.
#include <gtest/gtest.h>

#include "core/backend/backend.h"
#include "core/backend/device_select.h"
#include "core/nn/tensor_file.h"

#include <algorithm>
#include <cmath>
#include <map>
#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

fs::path tiny_config_file(const std::string& name, const std::string& text) {
  fs::path p = fresh_dir("cli", name) / "tiny.toml";
  write_text(p, text);
  return p;
}

// The tensors of a checkpoint's model.safetensors as raw bytes by name (the file's metadata names the
// thread count and the config, so whole files differ between equal runs).
std::map<std::string, std::string> weights(const fs::path& run_dir, const std::string& step_dir) {
  std::map<std::string, std::string> out;
  for (const auto& [n, t] : moelab::nn::load_tensors((run_dir / "ckpt" / step_dir / "model.safetensors").string()))
    out[n] = std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
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

TEST(Cli, WorkersNeedEnoughMicroBatchesAndGiveTheOneThreadResult) {
  fs::path cfg = tiny_config_file("workers", tiny_config());
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "train.workers=2", "--run-dir", run.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("<override 1: train.workers=2>: train.workers = 2 exceeds train.grad_accum = 1"),
            std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run)) << "a refused config left a run directory";
  // Every task runs concurrent micro-batches now (toy_mixture included): bitwise the one-thread run.
  fs::path workers = cfg.parent_path() / "workers", serial = cfg.parent_path() / "serial";
  r = run_moelab({"run", cfg.string(), "train.workers=2", "train.grad_accum=2", "--run-dir", workers.string(),
                  "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_moelab({"run", cfg.string(), "train.threads=1", "train.grad_accum=2", "--run-dir", serial.string(),
                  "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(read_text(workers / "summary.json"))["final_train_loss"],
            json::parse(read_text(serial / "summary.json"))["final_train_loss"]);
  EXPECT_TRUE(weights(workers, "step_000000024") ==
              weights(serial, "step_000000024"))
      << "the weights of two workers differ from the one-thread run";
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
  CommandResult r = run_moelab({"run", cfg.string(), "--run-dir", run.string(), "--progress", "none"},
                               {"MOELAB_TEST_NAN_AT_STEP=5"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("step 5: non-finite loss (nan); first offending tensor: loss"), std::string::npos) << r.output;
  json s = json::parse(read_text(run / "summary.json"));
  EXPECT_EQ(s["status"], "failed");
  EXPECT_EQ(s["steps"], 4);
  EXPECT_NE(s["error"].get<std::string>().find("step 5"), std::string::npos);
  // The test hook is no user config key.
  r = run_moelab({"run", cfg.string(), "debug.nan_at_step=5", "--run-dir", (run.string() + "_key")});
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

// train.on_non_finite = "skip": the poisoned step changes nothing and the run completes.
TEST(Cli, NonFiniteStepIsSkippedWhenAsked) {
  fs::path cfg = tiny_config_file("nan_skip", tiny_config());
  fs::path run = cfg.parent_path() / "run", clean = cfg.parent_path() / "clean";
  CommandResult r = run_moelab({"run", cfg.string(), "train.on_non_finite=skip", "--run-dir", run.string(),
                                "--progress", "none", "--no-report"},
                               {"MOELAB_TEST_NAN_AT_STEP=5"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 5: non-finite loss (nan)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the step was skipped (train.on_non_finite = \"skip\")"), std::string::npos) << r.output;
  json s = json::parse(read_text(run / "summary.json"));
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["steps"], 24);
  EXPECT_TRUE(std::isfinite(s["final_train_loss"].get<double>()));
  bool logged_skip = false;
  for (const json& rec : metrics_without_time(run))
    if (rec.contains("train/skipped_steps")) {
      EXPECT_EQ(rec["step"], 8) << "the skip is logged in the interval of step 5 (steps 5..8)";
      EXPECT_DOUBLE_EQ(rec["train/skipped_steps"].get<double>(), 1.0);
      logged_skip = true;
    }
  EXPECT_TRUE(logged_skip);
  // The weights differ from an unpoisoned run (one update fewer) but are finite.
  r = run_moelab({"run", cfg.string(), "--run-dir", clean.string(), "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(weights(run, "step_000000024") ==
               weights(clean, "step_000000024"));
  // Without the hook, "skip" changes nothing.
  fs::path clean_skip = cfg.parent_path() / "clean_skip";
  r = run_moelab({"run", cfg.string(), "train.on_non_finite=skip", "--run-dir", clean_skip.string(), "--progress",
                  "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(weights(clean_skip, "step_000000024") ==
              weights(clean, "step_000000024"));
  r = run_moelab({"run", cfg.string(), "train.on_non_finite=retry", "--run-dir", (run.string() + "_bad")});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("train.on_non_finite"), std::string::npos) << r.output;
}

// optim.param_groups: a pattern that matches no parameter is an error at the key; lr_scale = 0 freezes.
TEST(Cli, ParamGroupsPlaceErrorsAndFreezeWithZeroLrScale) {
  const std::string base = tiny_config();
  const std::string line = std::to_string(std::count(base.begin(), base.end(), '\n') + 1);
  fs::path cfg = tiny_config_file("param_groups", tiny_config("param_groups = [\"*.nothing.*: lr_scale=0.5\"]\n"));
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "--run-dir", run.string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(cfg.string() + ":" + line + ":"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optim.param_groups: '*.nothing.*' matches no parameter"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run)) << "a refused config left a run directory";

  fs::path frozen_cfg = tiny_config_file("param_groups_frozen", tiny_config("param_groups = [\"*.router.*: lr_scale=0 weight_decay=0\"]\n"));
  fs::path frozen = frozen_cfg.parent_path() / "run";
  r = run_moelab({"run", frozen_cfg.string(), "train.checkpoint_every=0", "--run-dir", frozen.string(), "--progress",
                  "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Every router weight equals its value at initialisation (a zero-step-trained model of the same seed).
  fs::path init = frozen_cfg.parent_path() / "init";
  // (The start run trains one step at a negligible rate with the same groups, so its routers are the init.)
  r = run_moelab({"run", frozen_cfg.string(), "train.steps=1", "optim.lr=1e-30", "optim.warmup_steps=0",
                  "--run-dir", init.string(), "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  moelab::nn::NamedTensors trained = moelab::nn::load_tensors((frozen / "ckpt" / "step_000000024" / "model.safetensors").string());
  moelab::nn::NamedTensors start = moelab::nn::load_tensors((init / "ckpt" / "step_000000001" / "model.safetensors").string());
  ASSERT_EQ(trained.size(), start.size());
  int routers = 0, moved = 0;
  for (size_t i = 0; i < trained.size(); ++i) {
    ASSERT_EQ(trained[i].first, start[i].first);
    if (trained[i].first.find(".router.") != std::string::npos) {
      ++routers;
      EXPECT_EQ(trained[i].second.to_vector<float>(), start[i].second.to_vector<float>()) << trained[i].first;
    } else if (trained[i].second.to_vector<float>() != start[i].second.to_vector<float>()) {
      ++moved;
    }
  }
  EXPECT_GT(routers, 0);
  EXPECT_GT(moved, 0) << "the other parameters trained";
}

// train.examples sets the budget in examples: ceil(examples / (batch_size * grad_accum)) steps; budgets are
// exclusive, and a frame budget needs a task that plays environment frames.
TEST(Cli, ExamplesBudgetSetsTheStepCount) {
  fs::path cfg = tiny_config_file("examples", tiny_config());
  fs::path run = cfg.parent_path() / "run";
  CommandResult r = run_moelab({"run", cfg.string(), "train.examples=300", "train.grad_accum=2", "--run-dir",
                                run.string(), "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json s = json::parse(read_text(run / "summary.json"));
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["steps"], 5);  // 300 / (32 * 2) = 4.7 -> 5
  r = run_moelab({"run", cfg.string(), "train.examples=300", "train.epochs=2", "--run-dir", (run.string() + "_bad")});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("train.epochs, train.examples and train.frames each set the budget"), std::string::npos)
      << r.output;
  // A frame budget needs a task with environments: the toy task has none, said at the key, nothing written.
  const fs::path frames_run = run.string() + "_frames";
  r = run_moelab({"run", cfg.string(), "train.frames=1000", "--run-dir", frames_run.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("<override 1: train.frames=1000>: train.frames: task \"toy_mixture\" plays no environment frames"),
            std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(frames_run / "config.toml"));
}

}  // namespace
