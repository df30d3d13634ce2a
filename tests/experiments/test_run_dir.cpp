// One short `moelab run` of the toy task: the run directory holds exactly what docs/architecture.md §4 lists,
// checkpoints have PyTorch-style names and the resume state, metrics.jsonl and the TensorBoard file
// agree record by record (every record's CRCs checked), `moelab eval` reproduces the logged
// evaluation, and old checkpoints are pruned.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/io/config.h"
#include "core/io/safetensors.h"
#include "core/io/tfevents.h"
#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

class RunDirTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = fresh_dir("run_dir", "suite");
    config_ = root_ / "tiny.toml";
    write_text(config_, tiny_config());
    run_dir_ = root_ / "run";
    result_ = run_moelab({"run", config_.string(), "model.moe.router=top_k", "+notes.purpose=test", "--run-dir",
                          run_dir_.string(), "--progress", "plain"});
  }
  static json summary() { return json::parse(read_text(run_dir_ / "summary.json")); }

  static inline fs::path root_, config_, run_dir_;
  static inline CommandResult result_;
};

// The suite's shared run, for the check functions below (combined into a few tests so that each
// test process, which ctest starts per test, trains once).
fs::path& root_ = RunDirTest::root_;
fs::path& config_ = RunDirTest::config_;
fs::path& run_dir_ = RunDirTest::run_dir_;
CommandResult& result_ = RunDirTest::result_;
json summary() { return RunDirTest::summary(); }

void RunSucceedsAndPrintsWhereTheReportIs() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  EXPECT_NE(result_.output.find("report: " + (run_dir_ / "report" / "index.html").string()), std::string::npos)
      << result_.output;
  EXPECT_NE(result_.output.find("step 24/24"), std::string::npos) << result_.output;  // plain progress lines
  EXPECT_EQ(result_.output.find('\r'), std::string::npos);  // never redraws when not on a terminal
}

void DirectoryHoldsTheDocumentedFiles() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  for (const char* f : {"config.toml", "overrides.txt", "cmdline.txt", "git.txt", "log.txt", "metrics.jsonl",
                        "summary.json", "report/index.html", "routing/labels_experts_blocks.0.ffn.csv",
                        "routing/labels_experts_blocks.1.ffn.csv"})
    EXPECT_TRUE(fs::exists(run_dir_ / f)) << f;
  EXPECT_EQ(read_text(run_dir_ / "overrides.txt"), "model.moe.router=top_k\n+notes.purpose=test\n");
  std::string cmdline = read_text(run_dir_ / "cmdline.txt");
  EXPECT_NE(cmdline.find("moelab run " + config_.string() + " model.moe.router=top_k +notes.purpose=test --run-dir"),
            std::string::npos)
      << cmdline;
  std::string log = read_text(run_dir_ / "log.txt");
  EXPECT_NE(log.find("eval step 8:"), std::string::npos) << log;
  EXPECT_NE(log.find("step 24/24 loss"), std::string::npos) << log;
  int events = 0;
  for (const auto& e : fs::directory_iterator(run_dir_))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) ++events;
  EXPECT_EQ(events, 1);
  for (int step : {8, 16, 24}) {
    char name[32];
    std::snprintf(name, sizeof name, "step_%09d", step);
    for (const char* f : {"model.safetensors", "state.safetensors", "DONE"})
      EXPECT_TRUE(fs::exists(run_dir_ / "ckpt" / name / f)) << name << "/" << f;
  }
  size_t entries = std::distance(fs::directory_iterator(run_dir_ / "ckpt"), fs::directory_iterator());
  EXPECT_EQ(entries, 3u);  // no temporary or incomplete directories left behind
  std::string csv = read_text(run_dir_ / "routing" / "labels_experts_blocks.1.ffn.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "label,expert_0,expert_1,expert_2,expert_3");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 clusters
  // Per-token samples of the last evaluation's first batch: one line per (example, slot), top_k = 1.
  std::string tokens = read_text(run_dir_ / "routing" / "tokens_blocks.1.ffn.csv");
  EXPECT_EQ(tokens.substr(0, tokens.find('\n')), "token,label,slot,expert,weight,kept");
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), '\n'), 1 + 32);  // the batch has 32 examples
}

void ConfigTomlIsTheResolvedConfig() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  moelab::io::Config saved = moelab::io::Config::from_file((run_dir_ / "config.toml").string());
  EXPECT_EQ(saved.value_text("model.moe.router"), "\"top_k\"");
  EXPECT_EQ(saved.value_text("notes.purpose"), "\"test\"");
  EXPECT_EQ(saved.value_text("train.steps"), "24");
  EXPECT_EQ(saved.value_text("name"), "\"tiny\"");
  EXPECT_EQ(saved.value_text("model.moe.switch_loss"), "0.01");  // defaults are written out too
}

void SummaryHasStepsFinalLossAndHeadlineMetrics() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  json s = summary();
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["steps"], 24);
  ASSERT_TRUE(s["final_train_loss"].is_number());
  EXPECT_GT(s["final_train_loss"].get<double>(), 0.0);
  EXPECT_EQ(s["headline_metrics"], json({"val/loss", "val/r2"}));
  ASSERT_TRUE(s["val/loss"].is_number());
  ASSERT_TRUE(s["val/r2"].is_number());
  EXPECT_TRUE(s["label_mi_bits"].contains("blocks.0.ffn"));
  EXPECT_EQ(s["routing_labels"].size(), 3u);
  // The final training loss is the mean over the last logging interval (steps 21..24).
  auto records = metrics_without_time(run_dir_);
  double last = NAN;
  for (const auto& r : records)
    if (r.contains("train/loss")) last = r["train/loss"].get<double>();
  EXPECT_EQ(s["final_train_loss"].get<double>(), last);
}

void CheckpointsHoldNamedWeightsAndResumeState() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  fs::path ckpt = run_dir_ / "ckpt" / "step_000000024";
  auto model = moelab::io::read_safetensors((ckpt / "model.safetensors").string());
  for (const char* name : {"input.weight", "input.bias", "blocks.0.norm.weight", "blocks.0.ffn.router.weight",
                           "blocks.1.ffn.experts.w1", "head.weight"})
    EXPECT_TRUE(model.contains(name)) << name;
  EXPECT_EQ(model.metadata_value("step"), "24");
  EXPECT_EQ(model.metadata_value("task"), "toy_mixture");
  auto state = moelab::io::read_safetensors((ckpt / "state.safetensors").string());
  EXPECT_TRUE(state.contains("optim.step"));
  EXPECT_TRUE(state.contains("optim.input.weight.exp_avg"));
  EXPECT_TRUE(state.contains("optim.input.weight.exp_avg_sq"));
  EXPECT_EQ(state.metadata_value("task.data.position"), "24");  // micro-batches consumed
  // Routing noise and dropout draws are keyed by (seed, step, micro-batch, module path): no stream state to save.
  for (const auto& [key, value] : state.metadata()) EXPECT_EQ(key.find("noise_rng"), std::string::npos) << key;
  EXPECT_EQ(read_text(ckpt / "DONE"), "step 24\n");
}

void MetricsLogTrainingAndEvaluationRecords() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  auto records = metrics_without_time(run_dir_);
  std::vector<int64_t> train_steps, eval_steps;
  for (const auto& r : records) {
    if (r.contains("train/loss")) {
      train_steps.push_back(r["step"]);
      EXPECT_TRUE(r["moe/load_cv"].contains("blocks.0.ffn"));
      EXPECT_TRUE(r["moe/label_mi_bits"].contains("blocks.1.ffn"));
      EXPECT_TRUE(r["moe/switch_loss"].contains("blocks.1.ffn"));  // balancing terms per layer
      EXPECT_EQ(r["moe/load"]["blocks.0.ffn"].size(), 4u);
      EXPECT_TRUE(r.contains("train/lr"));
      EXPECT_TRUE(r.contains("train/grad_norm"));
    }
    if (r.contains("val/loss")) {
      eval_steps.push_back(r["step"]);
      EXPECT_EQ(r["val/labels_experts"]["blocks.0.ffn"].size(), 3u);
      EXPECT_TRUE(r["val/label_mi_bits"].contains("blocks.0.ffn"));
    }
  }
  EXPECT_EQ(train_steps, (std::vector<int64_t>{4, 8, 12, 16, 20, 24}));
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{8, 16, 24}));
}

void TensorBoardRecordsParseAndMatchTheJsonl() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  fs::path events_path;
  for (const auto& e : fs::directory_iterator(run_dir_))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events_path = e.path();
  // read_event_file verifies both masked CRC-32Cs of every record.
  auto contents = moelab::io::read_event_file(events_path.string());
  ASSERT_FALSE(contents.events.empty());
  EXPECT_EQ(contents.events[0].file_version, "brain.Event:2");
  std::map<std::pair<int64_t, std::string>, float> scalars;
  for (const auto& ev : contents.events)
    for (const auto& s : ev.scalars) scalars[{ev.step, s.tag}] = s.value;
  int checked = 0;
  for (const auto& r : metrics_without_time(run_dir_)) {
    int64_t step = r["step"];
    for (const auto& [k, v] : r.items()) {
      if (v.is_number() && k != "step") {
        auto key = std::make_pair(step, k);
        ASSERT_TRUE(scalars.count(key)) << k << " at " << step;
        EXPECT_EQ(scalars[key], static_cast<float>(v.get<double>())) << k;
        ++checked;
      } else if (v.is_object() && k == "moe/load_cv") {
        for (const auto& [layer, x] : v.items()) {
          auto key = std::make_pair(step, k + "/" + layer);
          ASSERT_TRUE(scalars.count(key)) << k << "/" << layer;
          EXPECT_EQ(scalars[key], static_cast<float>(x.get<double>()));
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 30);
}

void EvalCommandReproducesTheLoggedEvaluation() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  CommandResult ev = run_moelab({"eval", run_dir_.string(), "--json"});
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  json out = json::parse(ev.output);
  EXPECT_EQ(out["step"], 24);
  EXPECT_EQ(out["metrics"]["val/loss"].get<double>(), summary()["val/loss"].get<double>());
  CommandResult ev8 = run_moelab({"eval", run_dir_.string(), "--checkpoint", "8", "--json"});
  ASSERT_EQ(ev8.exit_code, 0) << ev8.output;
  double logged = NAN;
  for (const auto& r : metrics_without_time(run_dir_))
    if (r["step"] == 8 && r.contains("val/loss")) logged = r["val/loss"];
  EXPECT_EQ(json::parse(ev8.output)["metrics"]["val/loss"].get<double>(), logged);
  CommandResult missing = run_moelab({"eval", run_dir_.string(), "--checkpoint", "5"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no complete checkpoint for step 5 (available: 8 16 24)"), std::string::npos) << missing.output;
}

// The tests below start their own runs (plain tests: no suite run needed).
fs::path own_config(const std::string& name) {
  fs::path p = fresh_dir("run_dir", name) / "tiny.toml";
  write_text(p, tiny_config());
  return p;
}

TEST(RunDirOptions, KeepsOnlyTheNewestCheckpointsAndDrawsABar) {
  fs::path config = own_config("keep2"), dir = config.parent_path() / "run";
  CommandResult r = run_moelab({"run", config.string(), "train.keep_checkpoints=2", "train.eval_every=0", "--run-dir",
                                dir.string(), "--progress", "bar", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // --progress bar redraws one tqdm-style line in place.
  EXPECT_NE(r.output.find('\r'), std::string::npos);
  EXPECT_NE(r.output.find("24/24 ["), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("it/s"), std::string::npos) << r.output;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "ckpt")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_000000016", "step_000000024"}));
  EXPECT_FALSE(fs::exists(dir / "report"));
}

TEST(RunDirOptions, EpochsAndGradientAccumulation) {
  // 256 examples / 32 per micro-batch = 8 micro-batches per epoch; 2 per step -> 4 steps per epoch.
  fs::path config = own_config("epochs"), dir = config.parent_path() / "run";
  CommandResult r = run_moelab({"run", config.string(), "train.epochs=2", "train.grad_accum=2", "train.eval_every=0",
                                "train.checkpoint_every=0", "--run-dir", dir.string(), "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(read_text(dir / "summary.json"))["steps"], 8);
  auto state = moelab::io::read_safetensors((dir / "ckpt" / "step_000000008" / "state.safetensors").string());
  EXPECT_EQ(state.metadata_value("task.data.position"), "16");  // two micro-batches per optimizer step
}

void RefusesToOverwriteARunWithoutResume() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  CommandResult r = run_moelab({"run", config_.string(), "--run-dir", run_dir_.string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("already holds a run; pass --resume"), std::string::npos) << r.output;
}

TEST_F(RunDirTest, RunLeavesTheDocumentedFiles) {
  RunSucceedsAndPrintsWhereTheReportIs();
  DirectoryHoldsTheDocumentedFiles();
  ConfigTomlIsTheResolvedConfig();
  SummaryHasStepsFinalLossAndHeadlineMetrics();
}

TEST_F(RunDirTest, CheckpointsMetricsAndTensorBoardAgree) {
  CheckpointsHoldNamedWeightsAndResumeState();
  MetricsLogTrainingAndEvaluationRecords();
  TensorBoardRecordsParseAndMatchTheJsonl();
}

TEST_F(RunDirTest, EvalReproducesTheRunAndRerunIsRefused) {
  EvalCommandReproducesTheLoggedEvaluation();
  RefusesToOverwriteARunWithoutResume();
}

}  // namespace
