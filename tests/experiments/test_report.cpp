// The run report: report/index.html is one self-contained page (no scripts, no external resources)
// with the documented sections, charts for the logged curves, an expert-load heatmap per MoE layer and
// a labels x experts heatmap per layer with its mutual information; the CSVs beside it hold the data;
// `moelab report` rebuilds it from the run directory alone.
#include <gtest/gtest.h>

#include <regex>

#include "moelab_cli_util.h"

using namespace moelab::testing;
using nlohmann::json;

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

// The text of <section id="id"> ... </section>.
std::string section(const std::string& html, const std::string& id) {
  size_t start = html.find("<section id=\"" + id + "\">");
  if (start == std::string::npos) return "";
  size_t end = html.find("</section>", start);
  return html.substr(start, end - start);
}

class ReportTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = fresh_dir("report", "suite");
    write_text(root_ / "tiny.toml", tiny_config());
    run_dir_ = root_ / "run";
    result_ = run_moelab({"run", (root_ / "tiny.toml").string(), "--run-dir", run_dir_.string(), "--progress", "none"});
    html_ = read_text(run_dir_ / "report" / "index.html");
  }
  static inline fs::path root_, run_dir_;
  static inline CommandResult result_;
  static inline std::string html_;
};

// The suite's shared run, for the check functions below (combined into a few tests so that each
// test process, which ctest starts per test, trains once).
fs::path& root_ = ReportTest::root_;
fs::path& run_dir_ = ReportTest::run_dir_;
CommandResult& result_ = ReportTest::result_;
std::string& html_ = ReportTest::html_;

void IsOneSelfContainedPage() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  EXPECT_EQ(html_.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html_.find("</html>"), std::string::npos);
  EXPECT_EQ(html_.find("<script"), std::string::npos);
  EXPECT_EQ(html_.find("<link"), std::string::npos);
  EXPECT_EQ(html_.find("<img"), std::string::npos);
  EXPECT_EQ(html_.find("@import"), std::string::npos);
  // The only URLs are XML namespace names, which browsers never fetch.
  std::regex url(R"((src|href)\s*=\s*["']?(https?:)?//)");
  EXPECT_FALSE(std::regex_search(html_, url));
  EXPECT_EQ(count(html_, "<svg"), count(html_, "</svg>"));
  EXPECT_EQ(count(html_, "<section"), count(html_, "</section>"));
}

void HasTheDocumentedSections() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  for (const char* id : {"summary", "curves", "moe", "routing", "config"})
    EXPECT_FALSE(section(html_, id).empty()) << id;
  std::string summary = section(html_, "summary");
  EXPECT_NE(summary.find("completed"), std::string::npos);
  EXPECT_NE(summary.find("val/loss"), std::string::npos);
  EXPECT_NE(summary.find("final_train_loss"), std::string::npos);
  std::string config = section(html_, "config");
  EXPECT_NE(config.find("[model.moe]"), std::string::npos);
  EXPECT_NE(config.find("task = &quot;toy_mixture&quot;"), std::string::npos);
}

void ChartsTheCurvesAndTheMoEStatistics() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  std::string curves = section(html_, "curves");
  EXPECT_GE(count(curves, "<svg"), 4);  // loss (train and val), lr, grad_norm, r2, ...
  EXPECT_NE(curves.find(">loss<"), std::string::npos);
  EXPECT_NE(curves.find(">train/lr<"), std::string::npos);
  EXPECT_NE(curves.find(">val/r2<"), std::string::npos);
  std::string moe = section(html_, "moe");
  EXPECT_NE(moe.find(">moe/load_cv<"), std::string::npos);
  EXPECT_NE(moe.find(">moe/label_mi_bits<"), std::string::npos);
  EXPECT_NE(moe.find(">moe/switch_loss<"), std::string::npos);
  // One expert-load heatmap per MoE layer: 4 experts x 6 logged steps = 24 cells each.
  EXPECT_NE(moe.find("expert load, blocks.0.ffn"), std::string::npos);
  EXPECT_NE(moe.find("expert load, blocks.1.ffn"), std::string::npos);
}

void RoutingHeatmapsShowLabelsByExpertsWithMutualInformation() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  std::string routing = section(html_, "routing");
  json s = json::parse(read_text(run_dir_ / "summary.json"));
  for (const char* layer : {"blocks.0.ffn", "blocks.1.ffn"}) {
    char mi[64];
    std::snprintf(mi, sizeof mi, "%s: MI %.6g of", layer, s["label_mi_bits"][layer].get<double>());
    EXPECT_NE(routing.find(mi), std::string::npos) << mi << "\n" << routing.substr(0, 2000);
  }
  EXPECT_EQ(count(routing, "<svg"), 2);
  EXPECT_EQ(count(routing, "class=\"cell\""), 2 * 3 * 4);  // 3 clusters x 4 experts per layer
  EXPECT_NE(routing.find("cluster 2"), std::string::npos);
}

void CsvFilesHoldThePlottedData() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  std::string scalars = read_text(run_dir_ / "report" / "scalars.csv");
  EXPECT_EQ(scalars.substr(0, 5), "step,");
  EXPECT_NE(scalars.find("train/loss"), std::string::npos);
  EXPECT_EQ(std::count(scalars.begin(), scalars.end(), '\n'), 1 + 6);  // header + steps 4..24 (evals share rows)
  std::string load = read_text(run_dir_ / "report" / "expert_load_blocks.0.ffn.csv");
  EXPECT_EQ(load.substr(0, load.find('\n')), "step,expert_0,expert_1,expert_2,expert_3");
  EXPECT_EQ(std::count(load.begin(), load.end(), '\n'), 1 + 6);
  std::string labels = read_text(run_dir_ / "report" / "labels_experts_blocks.1.ffn.csv");
  EXPECT_EQ(labels.substr(0, labels.find('\n')), "label,expert_0,expert_1,expert_2,expert_3");
}

void ReportCommandRebuildsTheSamePage() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  fs::remove_all(run_dir_ / "report");
  CommandResult r = run_moelab({"report", run_dir_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("report: " + (run_dir_ / "report" / "index.html").string()), std::string::npos);
  EXPECT_EQ(read_text(run_dir_ / "report" / "index.html"), html_);
}

void PastesTaskSectionsBeforeTheConfig() {
  ASSERT_EQ(result_.exit_code, 0) << result_.output;
  write_text(run_dir_ / "report" / "sections" / "extra.html", "<section id=\"extra\"><h2>Task extra</h2></section>");
  CommandResult r = run_moelab({"report", run_dir_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string html = read_text(run_dir_ / "report" / "index.html");
  size_t extra = html.find("<section id=\"extra\"><h2>Task extra</h2></section>");
  ASSERT_NE(extra, std::string::npos);
  EXPECT_GT(extra, html.find("<section id=\"routing\">"));
  EXPECT_LT(extra, html.find("<section id=\"config\">"));
}

TEST_F(ReportTest, IsOneSelfContainedPageWithTheDocumentedSections) {
  IsOneSelfContainedPage();
  HasTheDocumentedSections();
}

TEST_F(ReportTest, ShowsCurvesMoEStatisticsAndRouting) {
  ChartsTheCurvesAndTheMoEStatistics();
  RoutingHeatmapsShowLabelsByExpertsWithMutualInformation();
  CsvFilesHoldThePlottedData();
}

TEST_F(ReportTest, IsRebuiltFromTheRunDirectory) {
  ReportCommandRebuildsTheSamePage();
  PastesTaskSectionsBeforeTheConfig();
}

}  // namespace
