// Resume reproduces the uninterrupted run bit for bit (same thread count): after a run killed in the
// middle of writing a checkpoint (it resumes from the previous complete one) and after Ctrl-C (which
// writes a checkpoint before leaving), and after SIGTERM (handled like Ctrl-C). Metrics, TensorBoard scalars, summary and the final
// checkpoint files are compared with the uninterrupted run's.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
#include <set>
#include <tuple>

#include "core/io/tfevents.h"
#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

std::multiset<std::tuple<int64_t, std::string, float>> event_scalars(const fs::path& run_dir) {
  std::multiset<std::tuple<int64_t, std::string, float>> out;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) != 0) continue;
    for (const auto& ev : moelab::io::read_event_file(e.path().string()).events)  // checks every CRC
      for (const auto& s : ev.scalars) out.insert({ev.step, s.tag, s.value});
  }
  return out;
}

json summary_without_timing(const fs::path& run_dir) {
  json s = json::parse(read_text(run_dir / "summary.json"));
  s.erase("wall_time_s");
  return s;
}

class ResumeTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = fresh_dir("resume", "suite");
    config_ = root_ / "tiny.toml";
    write_text(config_, tiny_config());
    reference_ = root_ / "uninterrupted";
    reference_result_ = run(reference_);
  }
  static CommandResult run(const fs::path& dir, const std::vector<std::string>& env = {}, bool resume = false) {
    std::vector<std::string> args = {"run", config_.string(), "--run-dir", dir.string(), "--progress", "none", "--no-report"};
    if (resume) args.push_back("--resume");
    return run_moelab(args, env);
  }
  // Everything the resumed run must share with the uninterrupted one.
  static void expect_same_as_reference(const fs::path& dir) {
    EXPECT_EQ(metrics_without_time(dir), metrics_without_time(reference_));
    EXPECT_EQ(event_scalars(dir), event_scalars(reference_));
    EXPECT_EQ(summary_without_timing(dir), summary_without_timing(reference_));
    for (const char* f : {"model.safetensors", "state.safetensors"}) {
      fs::path a = reference_ / "ckpt" / "step_000000024" / f, b = dir / "ckpt" / "step_000000024" / f;
      EXPECT_TRUE(read_text(a) == read_text(b)) << f << " differs";
    }
  }

  static inline fs::path root_, config_, reference_;
  static inline CommandResult reference_result_;
};

// The suite's shared run, for the check functions below (combined into a few tests so that each
// test process, which ctest starts per test, trains once).
fs::path& root_ = ResumeTest::root_;
fs::path& config_ = ResumeTest::config_;
fs::path& reference_ = ResumeTest::reference_;
CommandResult& reference_result_ = ResumeTest::reference_result_;

TEST_F(ResumeTest, KilledWhileWritingACheckpointResumesFromThePreviousOne) {
  ASSERT_EQ(reference_result_.exit_code, 0) << reference_result_.output;
  fs::path dir = root_ / "killed";
  CommandResult killed = run(dir, {"MOELAB_TEST_KILL_IN_CHECKPOINT=16"});
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;  // SIGKILL
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "step_000000008" / "DONE"));
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "step_000000016.tmp" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "step_000000016"));
  EXPECT_FALSE(fs::exists(dir / "summary.json"));

  CommandResult resumed = run(dir, {}, /*resume=*/true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + (dir / "ckpt" / "step_000000008").string() + " (step 8)"),
            std::string::npos)
      << resumed.output;
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "step_000000016.tmp"));
  expect_same_as_reference(dir);
  std::string cmdline = read_text(dir / "cmdline.txt");
  EXPECT_NE(cmdline.find("--resume"), std::string::npos);  // both starts are recorded
  EXPECT_EQ(std::count(cmdline.begin(), cmdline.end(), '\n'), 2);
}

TEST_F(ResumeTest, CtrlCWritesACheckpointAndResumeContinuesExactly) {
  ASSERT_EQ(reference_result_.exit_code, 0) << reference_result_.output;
  fs::path dir = root_ / "interrupted";
  // Interrupted after step 13: between logging intervals and between checkpoints.
  CommandResult stopped = run(dir, {"MOELAB_TEST_SIGINT_AT_STEP=13"});
  EXPECT_EQ(stopped.exit_code, 1) << stopped.output;
  EXPECT_NE(stopped.output.find("interrupted by Ctrl-C at step 13; continue with --resume"), std::string::npos)
      << stopped.output;
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "step_000000013" / "DONE"));
  json s = json::parse(read_text(dir / "summary.json"));
  EXPECT_EQ(s["status"], "interrupted");
  EXPECT_EQ(s["steps"], 13);

  CommandResult resumed = run(dir, {}, /*resume=*/true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step 13)"), std::string::npos) << resumed.output;
  expect_same_as_reference(dir);
}

void RefusesToResumeWithADifferentModel() {
  ASSERT_EQ(reference_result_.exit_code, 0) << reference_result_.output;
  CommandResult r = run_moelab({"run", config_.string(), "model.d_model=8", "--run-dir", reference_.string(),
                                "--resume", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("model.d_model = 8 differs from the run being resumed"), std::string::npos) << r.output;
}

void ResumeCanExtendTheRun() {
  ASSERT_EQ(reference_result_.exit_code, 0) << reference_result_.output;
  fs::path dir = root_ / "extended";
  fs::create_directories(dir);
  fs::copy(reference_, dir, fs::copy_options::recursive);
  CommandResult r = run_moelab({"run", config_.string(), "train.steps=28", "--run-dir", dir.string(), "--resume",
                                "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json s = json::parse(read_text(dir / "summary.json"));
  EXPECT_EQ(s["steps"], 28);
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "step_000000028" / "DONE"));
  // The first 24 steps' records are kept as they were.
  auto before = metrics_without_time(reference_), after = metrics_without_time(dir);
  ASSERT_GT(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i]);
}

TEST_F(ResumeTest, RefusesAChangedModelButMayExtendTheRun) {
  RefusesToResumeWithADifferentModel();
  ResumeCanExtendTheRun();
}

// Starts `moelab <args>` with its output going to `log`; returns the child's pid.
pid_t start_moelab(const std::vector<std::string>& args, const fs::path& log) {
  const std::string binary = std::string(MOELAB_BINARY_DIR) + "/moelab";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// A SIGTERM (what a batch system or `kill` sends) checkpoints and stops like Ctrl-C; --resume continues.
// The signal comes at whatever step the run has reached once it logged its first record; the resumed
// run must still match an uninterrupted one bit for bit.
TEST(ResumeAfterSigterm, CheckpointsAndResumeContinuesExactly) {
  const fs::path root = fresh_dir("resume", "sigterm");
  const fs::path config = root / "tiny.toml";
  write_text(config, tiny_config());
  auto args = [&](const fs::path& dir) {
    return std::vector<std::string>{"run", config.string(), "train.steps=400", "train.checkpoint_every=100",
                                    "--run-dir", dir.string(), "--progress", "none", "--no-report"};
  };
  const fs::path reference = root / "uninterrupted", dir = root / "terminated";
  CommandResult ref = run_moelab(args(reference));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  const fs::path log = root / "terminated.log";
  pid_t pid = start_moelab(args(dir), log);
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_text(dir / "metrics.jsonl").find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string output = read_text(log);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << output;
  EXPECT_EQ(WEXITSTATUS(status), 1) << output;
  const size_t at = output.find("interrupted by SIGTERM at step ");
  ASSERT_NE(at, std::string::npos) << output;
  EXPECT_NE(output.find("continue with --resume"), std::string::npos) << output;
  json s = json::parse(read_text(dir / "summary.json"));
  EXPECT_EQ(s["status"], "interrupted");
  const int64_t step = s["steps"].get<int64_t>();
  EXPECT_GE(step, 4);
  EXPECT_LT(step, 400) << "the run finished before the signal came; the test proves nothing";
  char name[32];
  std::snprintf(name, sizeof name, "step_%09lld", static_cast<long long>(step));
  EXPECT_TRUE(fs::exists(dir / "ckpt" / name / "DONE")) << name;

  CommandResult resumed = run_moelab([&] {
    auto a = args(dir);
    a.push_back("--resume");
    return a;
  }());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step " + std::to_string(step) + ")"), std::string::npos) << resumed.output;
  EXPECT_EQ(metrics_without_time(dir), metrics_without_time(reference));
  EXPECT_EQ(event_scalars(dir), event_scalars(reference));
  EXPECT_EQ(summary_without_timing(dir), summary_without_timing(reference));
  for (const char* f : {"model.safetensors", "state.safetensors"})
    EXPECT_TRUE(read_text(reference / "ckpt" / "step_000000400" / f) == read_text(dir / "ckpt" / "step_000000400" / f))
        << f << " differs";
}

}  // namespace
