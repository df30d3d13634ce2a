// metrics.jsonl: one line per step, mirrored to TensorBoard; tolerant reading; truncation for resume.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/io/atomic_file.h"
#include "core/io/metrics.h"
#include "core/io/tfevents.h"

using namespace moelab::io;
namespace fs = std::filesystem;

namespace {

// Removes this program's temporary directory when all tests are done.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::temp_directory_path() / ("moelab_test_metrics_" + std::to_string(::getpid()))); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moelab_test_metrics_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

MetricsWriterOptions fixed_clock(double* t) {
  MetricsWriterOptions o;
  o.clock = [t] { return *t; };
  o.events.host = "h";
  o.events.flush_interval_s = 0;
  return o;
}

}  // namespace

TEST(Metrics, WritesOneJsonLinePerStepAndMirrorsScalars) {
  double t = 1000.5;
  const fs::path dir = fresh_dir("write");
  std::string events;
  {
    MetricsWriter w(dir, fixed_clock(&t));
    w.write(MetricsRecord(100)
                .scalar("train/loss", 2.5)
                .scalar("train/lr", 3e-4)
                .per_layer("moe/load_cv", {{"blocks.3.moe", 0.125}, {"blocks.5.moe", 0.5}})
                .json("moe/expert_load", {{"blocks.3.moe", {10, 20, 30}}}));
    t += 1;
    w.log(200, {{"train/loss", std::nan("")}});
    events = w.events_path();
  }
  const std::string text = read_file_bytes(dir / "metrics.jsonl");
  EXPECT_EQ(text,
            "{\"step\":100,\"time\":1000.5,\"train/loss\":2.5,\"train/lr\":0.0003,"
            "\"moe/load_cv\":{\"blocks.3.moe\":0.125,\"blocks.5.moe\":0.5},\"moe/expert_load\":{\"blocks.3.moe\":[10,20,30]}}\n"
            "{\"step\":200,\"time\":1001.5,\"train/loss\":null}\n");

  EventFileContents ev = read_event_file(events);
  ASSERT_EQ(ev.events.size(), 3u);  // version + two steps
  ASSERT_EQ(ev.events[1].scalars.size(), 4u);
  EXPECT_EQ(ev.events[1].step, 100);
  EXPECT_EQ(ev.events[1].scalars[2].tag, "moe/load_cv/blocks.3.moe");
  EXPECT_FLOAT_EQ(ev.events[1].scalars[3].value, 0.5f);
  EXPECT_TRUE(std::isnan(ev.events[2].scalars[0].value));  // TensorBoard gets the NaN itself

  MetricsLog log = read_metrics(dir / "metrics.jsonl");
  ASSERT_EQ(log.records.size(), 2u);
  auto loss = metric_series(log.records, "train/loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0], (std::pair<int64_t, double>{100, 2.5}));
  EXPECT_TRUE(std::isnan(loss[1].second));
  auto cv = metric_series(log.records, "moe/load_cv", "blocks.5.moe");
  ASSERT_EQ(cv.size(), 1u);
  EXPECT_DOUBLE_EQ(cv[0].second, 0.5);
}

TEST(Metrics, ReaderToleratesOnlyATruncatedLastLine) {
  const fs::path dir = fresh_dir("read");
  const fs::path p = dir / "metrics.jsonl";
  std::ofstream(p) << "{\"step\":1,\"a\":1}\n{\"step\":2,\"a\":2}\n{\"step\":3,\"a\"";
  MetricsLog log = read_metrics(p);
  EXPECT_TRUE(log.truncated_tail);
  EXPECT_EQ(log.records.size(), 2u);

  std::ofstream(p) << "{\"step\":1}\nnot json\n{\"step\":3}\n";
  try {
    read_metrics(p);
    FAIL();
  } catch (const MetricsError& e) {
    EXPECT_NE(std::string(e.what()).find(p.string() + ":2: not a JSON object: not json"), std::string::npos) << e.what();
  }
  std::ofstream(p) << "{\"a\":1}\n";
  EXPECT_THROW(read_metrics(p), MetricsError);
}

TEST(Metrics, TruncateAfterCheckpointStep) {
  const fs::path dir = fresh_dir("truncate");
  const fs::path p = dir / "metrics.jsonl";
  std::ofstream(p) << "{\"step\":100}\n{\"step\":200}\n{\"step\":300}\n{\"step\":40";
  EXPECT_EQ(truncate_metrics_after(p, 200), 2u);  // step 300 and the cut-off line
  EXPECT_EQ(read_file_bytes(p), "{\"step\":100}\n{\"step\":200}\n");
  EXPECT_EQ(truncate_metrics_after(p, 200), 0u);
  EXPECT_EQ(truncate_metrics_after(dir / "missing.jsonl", 5), 0u);
}

TEST(Metrics, ResumeDropsLaterStepsThenAppends) {
  double t = 5;
  const fs::path dir = fresh_dir("resume");
  {
    MetricsWriter w(dir, fixed_clock(&t));
    for (int s = 1; s <= 4; ++s) w.log(s * 10, {{"loss", double(s)}});
  }
  {
    // A killed run also leaves half a line behind.
    std::ofstream(dir / "metrics.jsonl", std::ios::app) << "{\"step\":50,\"lo";
  }
  {
    MetricsWriterOptions o = fixed_clock(&t);
    o.resume_after_step = 20;
    o.tensorboard = false;
    MetricsWriter w(dir, o);
    w.log(30, {{"loss", 33.0}});
  }
  auto series = metric_series(read_metrics(dir / "metrics.jsonl").records, "loss");
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[2], (std::pair<int64_t, double>{30, 33.0}));
  EXPECT_FALSE(read_metrics(dir / "metrics.jsonl").truncated_tail);
  // Reopening without a resume step only removes a partial last line.
  std::ofstream(dir / "metrics.jsonl", std::ios::app) << "{\"ste";
  { MetricsWriter w(dir, [&] { auto o = fixed_clock(&t); o.tensorboard = false; return o; }()); }
  EXPECT_EQ(read_metrics(dir / "metrics.jsonl").records.size(), 3u);
  EXPECT_FALSE(read_metrics(dir / "metrics.jsonl").truncated_tail);
}

TEST(Metrics, ReservedNamesAreRejected) {
  EXPECT_THROW(MetricsRecord(1).scalar("step", 1), moelab::Error);
  EXPECT_THROW(MetricsRecord(1).json("time", 1), moelab::Error);
}
