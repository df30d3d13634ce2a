// The specialization study's figures (experiments/lib/tasks/lm_report.h) on hand-computed cases: code
// against prose (total variation, mutual information), the chance same-expert rate, and the HTML and CSVs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "experiments/lib/tasks/lm_report.h"

using namespace moelab;
using namespace moelab::experiments;

namespace {

const std::vector<std::string> kDomains = {"en", "cpp", "dict", "python", "de"};

TEST(LmReport, CodeAndProseOnSeparateExperts) {
  LayerSpecialization l;
  l.path = "blocks.1.moe";
  l.num_experts = 2;
  // en and de all on expert 0, cpp and python all on expert 1, dict split (ignored by the split).
  l.domain_expert = {10, 0, /*cpp*/ 0, 5, /*dict*/ 7, 7, /*python*/ 0, 5, /*de*/ 10, 0};
  const CodeProseSplit s = code_prose_split(l, kDomains);
  ASSERT_TRUE(s.valid);
  EXPECT_NEAR(s.total_variation, 1.0, 1e-12);
  // 20 prose and 10 code tokens, the expert tells the group: I = H(group) = H(1/3, 2/3).
  const double h = -(1.0 / 3) * std::log2(1.0 / 3) - (2.0 / 3) * std::log2(2.0 / 3);
  EXPECT_NEAR(s.mi_bits, h, 1e-12);
  EXPECT_NEAR(s.group_entropy_bits, h, 1e-12);
}

TEST(LmReport, CodeAndProseOnTheSameMixture) {
  LayerSpecialization l;
  l.num_experts = 2;
  l.domain_expert = {3, 1, /*cpp*/ 6, 2, /*dict*/ 0, 9, /*python*/ 0, 0, /*de*/ 0, 0};
  const CodeProseSplit s = code_prose_split(l, kDomains);
  ASSERT_TRUE(s.valid);
  EXPECT_NEAR(s.total_variation, 0.0, 1e-12);
  EXPECT_NEAR(s.mi_bits, 0.0, 1e-12);
  EXPECT_EQ(s.code, (std::vector<double>{0.75, 0.25}));
  l.domain_expert = {0, 0, 6, 2, 0, 9, 0, 0, 0, 0};  // no prose tokens
  EXPECT_FALSE(code_prose_split(l, kDomains).valid);
}

TEST(LmReport, SameExpertRates) {
  LayerSpecialization l;
  l.num_experts = 3;
  l.top_counts = {2, 1, 1};
  l.same_pairs = 3;
  l.pairs = 4;
  EXPECT_NEAR(l.same_rate(), 0.75, 1e-12);
  EXPECT_NEAR(l.chance_same_rate(), 0.25 + 0.0625 + 0.0625, 1e-12);
}

TEST(LmReport, WritesCsvsAndEscapedHtml) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("moelab_lm_report_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  LmReport r;
  r.set_name = "test";
  r.domains = kDomains;
  r.bpb = text::ByteLossTally(5);
  r.bpb.add(0, std::log(2.0) * 8, 4);  // 8 bits over 4 bytes
  r.bpb.add(1, std::log(2.0) * 3, 3);
  LayerSpecialization l;
  l.path = "blocks.1.moe";
  l.num_experts = 2;
  l.domain_expert = {10, 0, 0, 5, 7, 7, 0, 5, 10, 0};
  l.top_counts = {1, 1};
  l.same_pairs = 1;
  l.pairs = 2;
  r.layers = {l};
  r.layer_paths = {"blocks.1.moe"};
  r.samples = {{"cpp", {"a<b", " && c"}, {{0, 1}}}};
  write_lm_report(dir, r);
  auto read = [](const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string csv = read(dir / "lm" / "bpb_test.csv");
  EXPECT_NE(csv.find("en,1,4,5.545177,2.000000"), std::string::npos) << csv;
  EXPECT_NE(csv.find("all,2,7,7.624619,1.571429"), std::string::npos) << csv;
  const std::string same = read(dir / "routing" / "consecutive_same_expert.csv");
  EXPECT_NE(same.find("blocks.1.moe,1,2,0.500000,0.500000,"), std::string::npos) << same;
  const std::string html = read(dir / "report" / "sections" / "lm.html");
  EXPECT_NE(html.find("a&lt;b"), std::string::npos);
  EXPECT_NE(html.find(" &amp;&amp; c"), std::string::npos);
  EXPECT_NE(html.find("<td>yes</td>"), std::string::npos);  // TV = 1 >= 0.5
  fs::remove_all(dir);
}

}  // namespace
