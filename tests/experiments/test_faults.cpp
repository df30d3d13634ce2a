// Injected faults: a write that fails part-way (a full disk, through the atomic writer's test hook)
// gives an error naming the file, leaves the last complete checkpoint intact, and --resume continues
// from it exactly; a checkpoint whose bytes were damaged is refused, naming the tensor and byte range.
#include <gtest/gtest.h>

#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/tensor/tensor.h"
#include "experiments/lib/checkpoint.h"
#include "moelab_cli_util.h"

using namespace moelab;
using namespace moelab::testing;
using nlohmann::json;

namespace {

// Clears the in-process hook however the test ends.
struct FaultScope {
  explicit FaultScope(io::WriteFault f) { io::set_write_fault_for_testing(std::move(f)); }
  ~FaultScope() { io::set_write_fault_for_testing(std::nullopt); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

size_t count_entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

experiments::CheckpointData small_checkpoint(int64_t step) {
  experiments::CheckpointData d;
  d.step = step;
  Tensor w = Tensor::empty(Shape({64, 16}), DType::f32);
  float* p = static_cast<float*>(w.raw_data());
  for (int64_t i = 0; i < w.numel(); ++i) p[i] = static_cast<float>(i * step % 17) - 8.0f;
  d.model = {{"w", w}};
  d.state = {{"optim.w.exp_avg", w}};
  d.model_metadata = {{"step", std::to_string(step)}};
  d.state_metadata = {{"step", std::to_string(step)}};
  return d;
}

}  // namespace

TEST(WriteFault, PartWayFailureNamesTheFileAndKeepsTheOldContents) {
  const fs::path dir = fresh_dir("faults", "atomic");
  const fs::path path = dir / "data.bin";
  io::write_file_atomic(path.string(), std::string(100, 'a'));
  {
    FaultScope fault({40, ""});
    const std::string m = error_of([&] { io::write_file_atomic(path.string(), std::string(100, 'b')); });
    EXPECT_NE(m.find("cannot write " + path.string() + ".tmp."), std::string::npos) << m;
    EXPECT_NE(m.find("No space left on device"), std::string::npos) << m;
    EXPECT_NE(m.find("after 40 bytes"), std::string::npos) << m;
    // Small writes below the limit still succeed; other paths are not affected by a path filter.
    io::write_file_atomic((dir / "small.txt").string(), std::string(40, 'c'));
  }
  EXPECT_EQ(read_text(path), std::string(100, 'a'));
  EXPECT_EQ(count_entries(dir), 2u);  // data.bin and small.txt, no temporary left behind
  {
    FaultScope fault({0, "other"});
    io::write_file_atomic(path.string(), std::string(100, 'd'));
  }
  EXPECT_EQ(read_text(path), std::string(100, 'd'));
}

TEST(WriteFault, FailedCheckpointLeavesThePreviousOneIntact) {
  const fs::path run = fresh_dir("faults", "checkpoint");
  experiments::write_checkpoint(run, small_checkpoint(8));
  for (const char* which : {"model.safetensors", "state.safetensors"}) {
    FaultScope fault({1000, std::string("step_000000016.tmp/") + which});
    const std::string m = error_of([&] { experiments::write_checkpoint(run, small_checkpoint(16)); });
    EXPECT_NE(m.find("the checkpoint of step 16 could not be written"), std::string::npos) << m;
    EXPECT_NE(m.find(which), std::string::npos) << m;
    EXPECT_NE(m.find("No space left on device"), std::string::npos) << m;
    EXPECT_NE(m.find("newest earlier complete checkpoint is step 8"), std::string::npos) << m;
    auto all = experiments::list_checkpoints(run);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].step, 8);
    EXPECT_EQ(count_entries(run / "ckpt"), 1u) << "the partial step_000000016.tmp must be removed";
  }
  experiments::CheckpointData back = experiments::read_checkpoint(experiments::find_checkpoint(run, 8));
  const experiments::CheckpointData want = small_checkpoint(8);
  ASSERT_EQ(back.model.size(), 1u);
  EXPECT_EQ(std::memcmp(back.model[0].second.raw_data(), want.model[0].second.raw_data(), 64 * 16 * 4), 0);
}

TEST(WriteFault, DamagedCheckpointNamesTensorRangeAndThePreviousCheckpoint) {
  const fs::path run = fresh_dir("faults", "damaged");
  experiments::write_checkpoint(run, small_checkpoint(8));
  const fs::path dir = experiments::write_checkpoint(run, small_checkpoint(16));
  const std::string file = (dir / "state.safetensors").string();
  std::string bytes = read_text(file);
  const io::SafetensorsTensor t = io::read_safetensors(file).get("optim.w.exp_avg");
  bytes[t.file_offset + 123] ^= 0x10;
  write_text(file, bytes);
  const std::string m = error_of([&] { experiments::read_checkpoint(experiments::find_checkpoint(run, 16)); });
  EXPECT_NE(m.find("the checkpoint of step 16 is damaged"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ": tensor 'optim.w.exp_avg'"), std::string::npos) << m;
  EXPECT_NE(m.find("[" + std::to_string(t.file_offset) + ", " + std::to_string(t.file_offset + t.nbytes) + ")"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("newest earlier complete checkpoint is step 8"), std::string::npos) << m;
}

// The `moelab` program: a run whose step-16 checkpoint hits a full disk fails with a clear message,
// keeps step 8, and --resume reproduces the uninterrupted run.
class FaultRunTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = fresh_dir("faults", "runs");
    config_ = root_ / "tiny.toml";
    write_text(config_, tiny_config());
  }
  static CommandResult run(const fs::path& dir, const std::vector<std::string>& env = {}, bool resume = false) {
    std::vector<std::string> args = {"run", config_.string(), "--run-dir", dir.string(), "--progress", "none", "--no-report"};
    if (resume) args.push_back("--resume");
    return run_moelab(args, env);
  }
  static inline fs::path root_, config_;
};

TEST_F(FaultRunTest, FullDiskDuringACheckpointKeepsTheLastOneAndResumeWorks) {
  const fs::path reference = root_ / "uninterrupted", dir = root_ / "disk_full";
  CommandResult ref = run(reference);
  ASSERT_EQ(ref.exit_code, 0) << ref.output;

  CommandResult failed = run(dir, {"MOELAB_TEST_FAIL_WRITE_AFTER_BYTES=500", "MOELAB_TEST_FAIL_WRITE_PATH=step_000000016"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("the checkpoint of step 16 could not be written"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("cannot write " + (dir / "ckpt" / "step_000000016.tmp" / "model.safetensors").string()),
            std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("No space left on device"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("continue from it with --resume"), std::string::npos) << failed.output;
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "step_000000008" / "DONE"));
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "step_000000016"));
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "step_000000016.tmp"));
  EXPECT_EQ(json::parse(read_text(dir / "summary.json"))["status"], "failed");
  // The surviving checkpoint is the one the uninterrupted run wrote at step 8, byte for byte.
  for (const char* f : {"model.safetensors", "state.safetensors"})
    EXPECT_TRUE(read_text(dir / "ckpt" / "step_000000008" / f) == read_text(reference / "ckpt" / "step_000000008" / f)) << f;

  CommandResult resumed = run(dir, {}, /*resume=*/true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + (dir / "ckpt" / "step_000000008").string() + " (step 8)"),
            std::string::npos)
      << resumed.output;
  EXPECT_EQ(metrics_without_time(dir), metrics_without_time(reference));
  for (const char* f : {"model.safetensors", "state.safetensors"})
    EXPECT_TRUE(read_text(dir / "ckpt" / "step_000000024" / f) == read_text(reference / "ckpt" / "step_000000024" / f)) << f;
}

TEST_F(FaultRunTest, DiskFullFromTheStartFailsCleanlyNamingAFile) {
  const fs::path dir = root_ / "no_space";
  CommandResult r = run(dir, {"MOELAB_TEST_FAIL_WRITE_AFTER_BYTES=0"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.exit_code, 128) << "no crash: " << r.output;
  EXPECT_NE(r.output.find("cannot write " + dir.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
}

TEST_F(FaultRunTest, ResumeRefusesADamagedCheckpointNamingTheTensor) {
  const fs::path dir = root_ / "damaged";
  CommandResult first = run(dir);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path model = dir / "ckpt" / "step_000000024" / "model.safetensors";
  const io::SafetensorsTensor t = io::read_safetensors(model.string()).get("head.weight");
  std::string bytes = read_text(model);
  bytes[t.file_offset + 1] ^= 0x01;
  write_text(model, bytes);
  CommandResult r = run_moelab({"run", config_.string(), "train.steps=28", "--run-dir", dir.string(), "--resume",
                                "--progress", "none", "--no-report"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(model.string() + ": tensor 'head.weight'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fail their CRC-32C check"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("newest earlier complete checkpoint is step 16"), std::string::npos) << r.output;
}
