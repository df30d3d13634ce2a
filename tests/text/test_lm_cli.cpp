// Task lm end to end through the `moelab` program on a small corpus (8000 bytes per domain, 700 pieces):
// `moelab run` trains a tiny MoE LM and reports test bits per byte per domain, the specialization study and
// the coloured samples; `moelab generate` streams the same text for the same seed; bad uses exit with 2.
#include <gtest/gtest.h>

#include <cmath>

#include "experiments/moelab_cli_util.h"

using namespace moelab::testing;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fresh_dir("lm_cli", "x").parent_path()); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

std::string lm_config(const fs::path& cache, const std::string& router) {
  return R"(task = "lm"
seed = 3

[data]
cache_dir = ")" + cache.string() + R"("
max_domain_bytes = 8000
vocab_size = 700
seq_len = 32
batch_size = 4
eval_batch_size = 4
val_tokens = 600

[model]
dim = 32
depth = 2
num_heads = 2
mlp_ratio = 2.0

[model.moe]
every = 2
num_experts = 4
top_k = 1
router = ")" + router + R"("

[report]
sample_tokens = 20

[train]
steps = 12
eval_every = 6
checkpoint_every = 6
log_every = 3

[optim]
lr = 0.003
warmup_steps = 2
)";
}

TEST(LmCommand, RunReportsBitsPerBytePerDomainThenGenerates) {
  const fs::path dir = fresh_dir("lm_cli", "run"), cache = fresh_dir("lm_cli", "cache");
  write_text(dir / "lm.toml", lm_config(cache, "top_k"));
  const fs::path run = dir / "out";
  const CommandResult r = run_moelab({"run", (dir / "lm.toml").string(), "--run-dir", run.string(), "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json summary = nlohmann::json::parse(read_text(run / "summary.json"));
  const auto& m = summary["metrics"];
  ASSERT_TRUE(m.contains("test/bpb")) << summary.dump(2);
  const double bpb = m["test/bpb"].get<double>();
  EXPECT_GT(bpb, 1.0);  // 12 steps: far from good, far from the 8+ bits of a uniform guess over 700 pieces
  EXPECT_LT(bpb, 6.0);
  // Every domain with test text at this small cap (documents of a small domain may all land in train).
  int domains = 0;
  for (const std::string d : {"en", "de", "es", "it", "ru", "pl", "cs", "cpp", "python", "dict", "licence"})
    domains += m.contains("test/bpb_" + d);
  EXPECT_GE(domains, 8) << summary.dump(2);
  EXPECT_TRUE(m.contains("test/bpb_en") && m.contains("test/bpb_de") && m.contains("test/bpb_ru"));
  EXPECT_TRUE(m.contains("val/bpb"));
  EXPECT_TRUE(m.contains("test/same_expert_rate/blocks.1.moe"));
  EXPECT_EQ(summary["label_kind"], "domain");
  const std::string html = read_text(run / "report" / "sections" / "lm.html");
  EXPECT_TRUE(contains(html, "Sample texts coloured by expert"));
  EXPECT_TRUE(contains(html, "I(domain; expert)"));
  EXPECT_TRUE(contains(read_text(run / "report" / "index.html"), "Sample texts coloured by expert"));
  const std::string csv = read_text(run / "lm" / "bpb_test.csv");
  EXPECT_TRUE(contains(csv, "\ncpp,")) << csv;
  EXPECT_TRUE(contains(read_text(run / "routing" / "consecutive_same_expert.csv"), "blocks.1.moe,"));
  EXPECT_TRUE(fs::exists(run / "text" / "tokenizer.model"));

  const std::vector<std::string> gen = {"generate", run.string(), "--prompt", "int main(", "--max-tokens", "24",
                                        "--seed", "7", "--temperature", "1.0"};
  const CommandResult a = run_moelab(gen), b = run_moelab(gen);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_TRUE(contains(a.output, "int main(")) << a.output;
  const CommandResult early = run_moelab({"generate", run.string(), "--prompt", "x", "--checkpoint", "6"});
  EXPECT_EQ(early.exit_code, 0) << early.output;
  EXPECT_TRUE(contains(early.output, "step 6")) << early.output;
}

TEST(LmCommand, HashRoutingRunsAndBadUsesAreErrors) {
  const fs::path dir = fresh_dir("lm_cli", "hash"), cache = fresh_dir("lm_cli", "cache_hash");
  write_text(dir / "lm.toml", lm_config(cache, "hash"));
  const CommandResult r = run_moelab({"run", (dir / "lm.toml").string(), "--run-dir", (dir / "out").string(),
                                      "--progress", "none", "train.steps=4", "train.eval_every=0",
                                      "train.checkpoint_every=0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json summary = nlohmann::json::parse(read_text(dir / "out" / "summary.json"));
  EXPECT_TRUE(std::isfinite(summary["metrics"]["test/bpb"].get<double>()));

  const CommandResult odd = run_moelab({"run", (dir / "lm.toml").string(), "--run-dir", (dir / "odd").string(),
                                        "model.num_heads=3"});
  EXPECT_EQ(odd.exit_code, 2) << odd.output;
  EXPECT_TRUE(contains(odd.output, "model.num_heads")) << odd.output;
  const CommandResult big = run_moelab({"run", (dir / "lm.toml").string(), "--run-dir", (dir / "big").string(),
                                        "data.vocab_size=60000"});
  EXPECT_EQ(big.exit_code, 2) << big.output;
  EXPECT_TRUE(contains(big.output, "data.vocab_size=60000>:")) << big.output;  // placed at the key's origin
  EXPECT_TRUE(contains(big.output, "Vocabulary size too high")) << big.output;
  const CommandResult no_run = run_moelab({"generate", dir.string(), "--prompt", "x"});
  EXPECT_NE(no_run.exit_code, 0);
  EXPECT_TRUE(contains(no_run.output, "config.toml")) << no_run.output;
}

}  // namespace
