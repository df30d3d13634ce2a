// `moelab sweep` on a tiny grid (2 routers x 2 seeds): every run finishes, a second invocation skips
// them all, an unfinished run is resumed, and `moelab compare` groups the seeds of each point with
// mean ± std that match the runs' summaries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (text.compare(pos, prefix.size(), prefix) == 0) ++n;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return n;
}

std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::string text = read_text(p);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    std::vector<std::string> cells;
    size_t s = 0;
    while (true) {
      size_t c = line.find(',', s);
      cells.push_back(line.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
    rows.push_back(cells);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return rows;
}

class SweepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fresh_dir("sweep", "suite");
    write_text(root_ / "base.toml", tiny_config());
    write_text(root_ / "grid.toml", R"(base = "base.toml"
name = "tiny_grid"
seeds = [0, 1]
overrides = ["train.steps=12", "train.eval_every=0", "train.checkpoint_every=0"]

[grid]
model.moe.router = ["top_k", "soft_moe"]
)");
    out_ = root_ / "out";
    first_ = run_moelab({"sweep", (root_ / "grid.toml").string(), "--out", out_.string(), "--jobs", "2"});
  }
  static fs::path run_dir(const std::string& router, int seed) {
    return out_ / ("router=" + router) / ("seed_" + std::to_string(seed));
  }
  static inline fs::path root_, out_;
  static inline CommandResult first_;
};

TEST_F(SweepTest, RunsEveryPointAndComparesTheSeeds) {
  ASSERT_EQ(first_.exit_code, 0) << first_.output;
  EXPECT_NE(first_.output.find("4 runs (2 points x 2 seeds)"), std::string::npos) << first_.output;
  for (const char* router : {"top_k", "soft_moe"})
    for (int seed : {0, 1}) {
      json s = json::parse(read_text(run_dir(router, seed) / "summary.json"));
      EXPECT_EQ(s["status"], "completed");
      EXPECT_EQ(s["steps"], 12);
      EXPECT_EQ(s["seed"], seed);
      EXPECT_EQ(s["name"], "tiny_grid");
      EXPECT_TRUE(fs::exists(run_dir(router, seed) / "stdout.txt"));
    }
  EXPECT_EQ(count_lines_starting(first_.output, "start "), 4);

  // The comparison written at the end: one row per router, mean ± std over the two seeds.
  for (const char* f : {"compare.md", "compare.csv", "compare.html", "aggregate.md", "aggregate.csv", "aggregate.json"})
    EXPECT_TRUE(fs::exists(out_ / f)) << f;
  auto rows = read_csv(out_ / "compare.csv");
  ASSERT_EQ(rows.size(), 3u);  // header + one row per router
  EXPECT_EQ(rows[0][0], "model.moe.router");
  EXPECT_EQ(rows[0][1], "runs");
  ASSERT_EQ(rows[0][3], "val/loss mean");
  ASSERT_EQ(rows[0][4], "val/loss std");
  EXPECT_EQ(rows[1][0], "\"\"\"top_k\"\"\"");  // the TOML value text, CSV-quoted
  for (size_t r = 1; r < rows.size(); ++r) {
    std::string router = r == 1 ? "top_k" : "soft_moe";
    EXPECT_EQ(rows[r][1], "2");
    double a = json::parse(read_text(run_dir(router, 0) / "summary.json"))["val/loss"];
    double b = json::parse(read_text(run_dir(router, 1) / "summary.json"))["val/loss"];
    double mean = (a + b) / 2, sd = std::abs(a - b) / std::sqrt(2.0);  // sample std of two values
    EXPECT_NEAR(std::stod(rows[r][3]), mean, 1e-8 * std::abs(mean));
    EXPECT_NEAR(std::stod(rows[r][4]), sd, 1e-7 * std::abs(mean) + 1e-12);
  }
  std::string md = read_text(out_ / "compare.md");
  EXPECT_NE(md.find("| model.moe.router | runs | val/loss | val/r2 | final_train_loss |"), std::string::npos) << md;
  EXPECT_NE(md.find(" ± "), std::string::npos) << md;
  std::string html = read_text(out_ / "compare.html");
  EXPECT_NE(html.find("<table id=\"compare\">"), std::string::npos);

  // `moelab compare` on the sweep directory gives the same groups.
  fs::path table_dir = root_ / "tables";
  CommandResult r = run_moelab({"compare", out_.string(), "--out", table_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| \"top_k\" | 2 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| \"soft_moe\" | 2 |"), std::string::npos) << r.output;
  auto sorted_rows = [](const fs::path& p) {
    auto rows = read_csv(p);
    std::sort(rows.begin() + 1, rows.end());  // groups come in path order here, grid order from the sweep
    return rows;
  };
  EXPECT_EQ(sorted_rows(table_dir / "compare.csv"), sorted_rows(out_ / "compare.csv"));
}

TEST_F(SweepTest, SecondInvocationSkipsFinishedRunsAndResumesUnfinishedOnes) {
  ASSERT_EQ(first_.exit_code, 0) << first_.output;
  auto stamp = fs::last_write_time(run_dir("top_k", 0) / "summary.json");
  CommandResult again = run_moelab({"sweep", (root_ / "grid.toml").string(), "--out", out_.string()});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_starting(again.output, "skip "), 4) << again.output;
  EXPECT_EQ(count_lines_starting(again.output, "start "), 0) << again.output;
  EXPECT_EQ(fs::last_write_time(run_dir("top_k", 0) / "summary.json"), stamp);

  // A run without a completed summary is started again with --resume (it continues from its checkpoint).
  fs::remove(run_dir("soft_moe", 1) / "summary.json");
  CommandResult third = run_moelab({"sweep", (root_ / "grid.toml").string(), "--out", out_.string()});
  ASSERT_EQ(third.exit_code, 0) << third.output;
  EXPECT_EQ(count_lines_starting(third.output, "skip "), 3) << third.output;
  EXPECT_EQ(count_lines_starting(third.output, "start "), 1) << third.output;
  EXPECT_NE(read_text(run_dir("soft_moe", 1) / "stdout.txt").find("resumed from"), std::string::npos);
  EXPECT_EQ(json::parse(read_text(run_dir("soft_moe", 1) / "summary.json"))["status"], "completed");
}

// Needs no sweep to have run: a plain test.
TEST(SweepFile, InvalidGridPointIsRejectedBeforeAnythingRuns) {
  fs::path root = fresh_dir("sweep", "invalid");
  write_text(root / "base.toml", tiny_config());
  write_text(root / "bad.toml", R"(base = "base.toml"
[grid]
model.moe.top_k = [1, 9]
)");
  fs::path out = root / "bad_out";
  CommandResult r = run_moelab({"sweep", (root / "bad.toml").string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("sweep point top_k=9"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("exceeds model.moe.num_experts = 4"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  write_text(root / "typo.toml", "base = \"base.toml\"\nseed = [1]\n");
  r = run_moelab({"sweep", (root / "typo.toml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("typo.toml:2:1: unknown sweep key 'seed'; did you mean 'seeds'?"), std::string::npos) << r.output;
}

}  // namespace
