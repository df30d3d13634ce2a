// `moelab run` under mpirun -np 2 against the one-process run: data-parallel equality, rank 0 alone writing
// the run directory, a failing rank stopping the job, resume with the same and with another rank count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "moelab_cli_util.h"

namespace moelab::testing {
namespace {

#ifdef MOELAB_MPIEXEC
// `timeout 180 mpirun -np N <flags> -x VAR... moelab <args>`: a hung job fails instead of blocking ctest.
CommandResult run_mpi(int ranks, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::string cmd;
  for (const auto& e : env) cmd += e + " ";
  cmd += std::string("timeout 180 ") + MOELAB_MPIEXEC + " -np " + std::to_string(ranks) + " " + MOELAB_MPIEXEC_FLAGS;
  for (const auto& e : env) cmd += " -x " + e.substr(0, e.find('='));
  cmd += " " + shell_quote(std::string(MOELAB_BINARY_DIR) + "/moelab");
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  CommandResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}
#define SKIP_WITHOUT_MPI()
#else
CommandResult run_mpi(int, const std::vector<std::string>&, const std::vector<std::string>& = {}) { return {}; }
#define SKIP_WITHOUT_MPI() GTEST_SKIP() << "built without MPI (MOELAB_MPI=OFF or no mpirun found)"
#endif

// Two micro-batches of 16 examples per step: one per rank under -np 2, both in one process otherwise.
std::vector<std::string> run_args(const fs::path& config, const fs::path& run_dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"run", config.string(), "--run-dir", run_dir.string(), "--progress", "none", "--no-report",
                                "train.threads=1", "train.grad_accum=2", "data.batch_size=16"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

fs::path config_file(const std::string& test) {
  fs::path c = fresh_dir(test, "config") / "tiny.toml";
  write_text(c, tiny_config());
  return c;
}

std::set<std::string> files_below(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    if (rel.find("events.out.tfevents") != std::string::npos) rel = "events.out.tfevents";  // host and pid in the name
    out.insert(rel);
  }
  return out;
}

std::string final_model(const fs::path& run_dir) { return read_text(run_dir / "ckpt/step_000000024/model.safetensors"); }

TEST(DistributedTraining, TwoRanksEqualOneProcessBitwise) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_equal");
  const fs::path one = fresh_dir("dt_equal", "one") / "run", two = fresh_dir("dt_equal", "two") / "run";
  CommandResult r1 = run_moelab(run_args(config, one));
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  CommandResult r2 = run_mpi(2, run_args(config, two));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(read_text(two / "log.txt").find("rank 0 of 2"), std::string::npos) << read_text(two / "log.txt");
  // Every logged number (losses, gradient norms, routing, evaluation) and every parameter bit agree: each
  // micro-batch is computed alike and its gradient summed in the same order (rank order = micro-batch order).
  const auto m1 = metrics_without_time(one), m2 = metrics_without_time(two);
  ASSERT_FALSE(m1.empty());
  EXPECT_EQ(m1, m2);
  const std::string model1 = final_model(one);
  ASSERT_FALSE(model1.empty());
  EXPECT_TRUE(model1 == final_model(two)) << "the final parameters differ";
}

TEST(DistributedTraining, FourMicroBatchesOnTwoRanksWithinRounding) {
  SKIP_WITHOUT_MPI();
  // Two micro-batches per rank: the gradient is (g0 + g2) + (g1 + g3) instead of ((g0 + g1) + g2) + g3,
  // equal within f32 rounding (the tolerance below), not bitwise.
  const fs::path config = config_file("dt_four");
  const fs::path one = fresh_dir("dt_four", "one") / "run", two = fresh_dir("dt_four", "two") / "run";
  const std::vector<std::string> four = {"train.grad_accum=4", "data.batch_size=8"};
  CommandResult r1 = run_moelab(run_args(config, one, four));
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  CommandResult r2 = run_mpi(2, run_args(config, two, four));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  const auto s1 = nlohmann::json::parse(read_text(one / "summary.json")), s2 = nlohmann::json::parse(read_text(two / "summary.json"));
  const double l1 = s1["metrics"]["val/loss"], l2 = s2["metrics"]["val/loss"];
  EXPECT_NEAR(l1, l2, 1e-4 * std::abs(l1)) << "one process " << l1 << ", two ranks " << l2;
  EXPECT_EQ(s2["ranks"], 2);
  // Two worker threads per rank, each training one of the rank's two micro-batches.
  const fs::path workers = fresh_dir("dt_four", "workers") / "run";
  std::vector<std::string> with_workers = four;
  with_workers.push_back("train.workers=2");
  CommandResult r3 = run_mpi(2, run_args(config, workers, with_workers));
  ASSERT_EQ(r3.exit_code, 0) << r3.output;
  const double l3 = nlohmann::json::parse(read_text(workers / "summary.json"))["metrics"]["val/loss"];
  EXPECT_NEAR(l1, l3, 1e-4 * std::abs(l1)) << "one process " << l1 << ", two ranks with two workers " << l3;
}

// `moelab bench dist --train`: the bytes it reports are the model's f32 gradients (all of them, once per
// step) and, with expert parallel, some token rows.
TEST(DistributedTraining, BenchTrainStepReportsTheBytesMoved) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_bench");
  auto bench = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"bench", "dist", "--train", config.string(), "--repeats", "2", "--warmup", "1",
                                  "--set", "train.grad_accum=2", "--set", "train.threads=1"};
    a.insert(a.end(), extra.begin(), extra.end());
    CommandResult r = run_mpi(2, a);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const size_t at = r.output.find("{\"bench\": \"dist\"");
    EXPECT_NE(at, std::string::npos) << r.output;
    return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(r.output.substr(at, r.output.find('\n', at) - at));
  };
  nlohmann::json dp = bench({});
  ASSERT_TRUE(dp.is_object());
  EXPECT_EQ(dp["ranks"], 2);
  EXPECT_EQ(dp["gradient_bytes"], 4 * dp["parameters"].get<int64_t>());
  EXPECT_EQ(dp["gradient_bytes_sent"], dp["gradient_bytes"]);  // 2 (N-1)/N = 1 at N = 2
  EXPECT_EQ(dp["expert_all_to_all_bytes_sent"], 0);
  EXPECT_GT(dp["ms_per_step"].get<double>(), 0);
  nlohmann::json ep = bench({"--set", "dist.expert_parallel=2"});
  ASSERT_TRUE(ep.is_object());
  EXPECT_EQ(ep["expert_parallel"], 2);
  EXPECT_GT(ep["expert_all_to_all_bytes_sent"].get<int64_t>(), 0);
}

// Expert parallel (each rank holds the FFN of 2 of the 4 experts) and the global-scope Switch loss: the
// tokens take another path (all-to-all, grouped FFN of a rank's experts, weighted sum per token) than the
// fused one-process op, so the run equals it within f32 rounding rather than bit for bit.
TEST(DistributedTraining, ExpertParallelMatchesOneProcess) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_ep");
  const fs::path one = fresh_dir("dt_ep", "one") / "run", two = fresh_dir("dt_ep", "two") / "run";
  CommandResult r1 = run_moelab(run_args(config, one));
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  CommandResult r2 = run_mpi(2, run_args(config, two, {"dist.expert_parallel=2"}));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(read_text(two / "log.txt").find("expert parallel 2"), std::string::npos);
  const auto s1 = nlohmann::json::parse(read_text(one / "summary.json")), s2 = nlohmann::json::parse(read_text(two / "summary.json"));
  const double l1 = s1["metrics"]["val/loss"], l2 = s2["metrics"]["val/loss"];
  EXPECT_NEAR(l1, l2, 1e-4 * std::abs(l1)) << "one process " << l1 << ", expert parallel " << l2;
  // The global scope changes the Switch term (counts of both ranks' micro-batches): it trains, differently.
  const fs::path global = fresh_dir("dt_ep", "global") / "run";
  CommandResult r3 = run_mpi(2, run_args(config, global, {"dist.expert_parallel=2", "model.moe.switch_loss_scope=global"}));
  ASSERT_EQ(r3.exit_code, 0) << r3.output;
  const double l3 = nlohmann::json::parse(read_text(global / "summary.json"))["metrics"]["val/loss"];
  EXPECT_TRUE(std::isfinite(l3));
  EXPECT_NE(metrics_without_time(global), metrics_without_time(two));
}

TEST(DistributedTraining, ExpertParallelMustDivideTheExperts) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_ep_bad");
  const fs::path run = fresh_dir("dt_ep_bad", "two") / "run";
  CommandResult r = run_mpi(2, run_args(config, run, {"dist.expert_parallel=2", "model.moe.num_experts=3"}));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dist.expert_parallel = 2 does not divide the 3 experts of blocks.1.ffn"), std::string::npos)
      << r.output;
}

TEST(DistributedTraining, OddGradAccumIsAConfigError) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_odd");
  const fs::path run = fresh_dir("dt_odd", "two") / "run";
  CommandResult r = run_mpi(2, run_args(config, run, {"train.grad_accum=3"}));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train.grad_accum = 3 is not a multiple of the 2 ranks"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run / "metrics.jsonl"));
}

TEST(DistributedTraining, RankZeroAloneWritesTheRunDirectory) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_files");
  const fs::path one = fresh_dir("dt_files", "one") / "run", two = fresh_dir("dt_files", "two") / "run";
  ASSERT_EQ(run_moelab(run_args(config, one)).exit_code, 0);
  CommandResult r = run_mpi(2, run_args(config, two));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> expected = files_below(one);
  expected.insert("log_rank1.txt");
  EXPECT_EQ(files_below(two), expected);
  const std::string rank1 = read_text(two / "log_rank1.txt");
  EXPECT_NE(rank1.find("rank 1 of 2"), std::string::npos) << rank1;
  EXPECT_NE(rank1.find("step 24/24"), std::string::npos) << rank1;
  // Rank 1 prints nothing to the console: each line of the run appears once in the job's output.
  const std::string line = "run directory: " + two.string();
  const size_t first = r.output.find(line);
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(line, first + 1), std::string::npos) << r.output;
}

TEST(DistributedTraining, AFailingRankStopsTheJobWithItsError) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_fail");
  const fs::path run = fresh_dir("dt_fail", "two") / "run";
  CommandResult r = run_mpi(2, run_args(config, run), {"MOELAB_TEST_FAIL_RANK=1:10"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "the job hung: " << r.output;
  EXPECT_NE(r.output.find("moelab: rank 1 of 2 failed: step 10: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("injected failure on rank 1"), std::string::npos) << r.output;
  // Rank 0 waited in step 10's all-reduce: the checkpoint of step 8 is the last one, and it is complete.
  EXPECT_TRUE(fs::exists(run / "ckpt/step_000000008/DONE"));
  EXPECT_FALSE(fs::exists(run / "ckpt/step_000000016"));
  EXPECT_FALSE(fs::exists(run / "summary.json"));
}

TEST(DistributedTraining, ResumeWithTheSameRanksContinuesBitwise) {
  SKIP_WITHOUT_MPI();
  const fs::path config = config_file("dt_resume");
  const fs::path whole = fresh_dir("dt_resume", "whole") / "run", cut = fresh_dir("dt_resume", "cut") / "run";
  ASSERT_EQ(run_mpi(2, run_args(config, whole)).exit_code, 0);
  // Interrupted after step 12 (a checkpoint is written there), then resumed with two ranks.
  CommandResult r1 = run_mpi(2, run_args(config, cut), {"MOELAB_TEST_SIGINT_AT_STEP=12"});
  ASSERT_TRUE(fs::exists(cut / "ckpt/step_000000012/DONE")) << r1.output;
  EXPECT_EQ(nlohmann::json::parse(read_text(cut / "summary.json"))["status"], "interrupted");
  // Another rank count is refused, naming the one the run was trained with, before anything is written.
  const std::string cmdline = read_text(cut / "cmdline.txt"), log = read_text(cut / "log.txt");
  CommandResult other = run_moelab(run_args(config, cut, {"--resume"}));
  EXPECT_EQ(read_text(cut / "cmdline.txt"), cmdline);
  EXPECT_EQ(read_text(cut / "log.txt"), log);
  EXPECT_NE(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("trained on 2 rank(s); resume it with the same number (mpirun -np 2), not 1"),
            std::string::npos) << other.output;
  CommandResult r2 = run_mpi(2, run_args(config, cut, {"--resume"}));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_EQ(metrics_without_time(cut), metrics_without_time(whole));
  const std::string model = final_model(whole);
  ASSERT_FALSE(model.empty());
  EXPECT_TRUE(model == final_model(cut)) << "the resumed run's final parameters differ";
}

}  // namespace
}  // namespace moelab::testing
