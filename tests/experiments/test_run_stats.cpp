// The program's own arithmetic, without training: routing statistics (load spread, label/expert mutual
// information), the logging-interval accumulator and its exact checkpoint form, aux-loss naming by module path,
// checkpoint bookkeeping, and the grouping and mean ± std of `moelab compare`.
#include <gtest/gtest.h>

#include <cmath>

#include "experiments/lib/checkpoint.h"
#include "experiments/lib/compare.h"
#include "experiments/lib/interval_stats.h"
#include "core/moe/routing_stats.h"
#include "core/nn/context.h"
#include "moelab_cli_util.h"

using namespace moelab::experiments;
using namespace moelab::moe;
using namespace moelab::testing;
using nlohmann::json;

namespace {

TEST(RoutingMath, LoadStatistics) {
  LoadStats s = load_stats({10, 10, 10, 10});
  EXPECT_DOUBLE_EQ(s.cv, 0.0);
  EXPECT_DOUBLE_EQ(s.max_over_mean, 1.0);
  EXPECT_EQ(s.unused, 0);
  EXPECT_DOUBLE_EQ(s.fraction[2], 0.25);
  s = load_stats({30, 10, 0, 0});  // mean 10, population std sqrt((400+0+100+100)/4) = sqrt(150)
  EXPECT_NEAR(s.cv, std::sqrt(150.0) / 10.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.max_over_mean, 3.0);
  EXPECT_EQ(s.unused, 2);
  EXPECT_DOUBLE_EQ(s.fraction[0], 0.75);
}

TEST(RoutingMath, MutualInformationBits) {
  // Each of 4 labels always goes to its own expert: I = H(label) = 2 bits.
  std::vector<double> diagonal(16, 0.0);
  for (int i = 0; i < 4; ++i) diagonal[i * 4 + i] = 25;
  EXPECT_NEAR(mutual_information_bits(diagonal, 4, 4), 2.0, 1e-12);
  EXPECT_NEAR(label_entropy_bits(diagonal, 4, 4), 2.0, 1e-12);
  // Routing independent of the label: 0 bits.
  std::vector<double> independent = {1, 2, 3, 2, 4, 6};
  EXPECT_NEAR(mutual_information_bits(independent, 2, 3), 0.0, 1e-12);
  // Two labels, one expert each, but one label also half the time elsewhere: a hand-computed value.
  // p = [[0.25, 0.25], [0, 0.5]] -> I = 0.25 log2(0.25/(0.5*0.25)) + 0.25 log2(0.25/(0.5*0.75)) + 0.5 log2(0.5/(0.5*0.75))
  double expect = 0.25 * std::log2(2.0) + 0.25 * std::log2(0.25 / 0.375) + 0.5 * std::log2(0.5 / 0.375);
  EXPECT_NEAR(mutual_information_bits({1, 1, 0, 2}, 2, 2), expect, 1e-12);
  EXPECT_EQ(mutual_information_bits({}, 0, 0), 0.0);
}

TEST(IntervalStats, AveragesAndDerivedLoadStatistics) {
  IntervalStats st;
  st.add_scalar("train/loss", 1.0);
  st.add_scalar("train/loss", 3.0);
  st.add_layer_scalar("moe/switch_loss", "blocks.1.moe", 0.5);
  st.add_layer_scalar("moe/switch_loss", "blocks.1.moe", 1.5);
  RoutingLog r;
  RoutingTally& t = r.layer("blocks.1.moe", 2);
  t.expert_counts = {3, 1};
  t.add_label_count(0, 0, 2);
  t.add_label_count(1, 0);
  t.add_label_count(1, 1);
  t.tokens = 4;
  t.entropy_sum = 1.0;
  st.add_routing(r);
  st.add_routing(r);
  EXPECT_EQ(st.to_record(40).step(), 40);
  auto rec = st.to_record(40).fields();
  EXPECT_DOUBLE_EQ(rec["train/loss"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(rec["moe/switch_loss"]["blocks.1.moe"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(rec["moe/router_entropy"]["blocks.1.moe"].get<double>(), 0.25);  // 2 nats over 8 tokens
  EXPECT_DOUBLE_EQ(rec["moe/load"]["blocks.1.moe"][0].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(rec["moe/load_cv"]["blocks.1.moe"].get<double>(), 0.5);  // counts 6, 2: std 2 / mean 4
  EXPECT_NEAR(rec["moe/label_mi_bits"]["blocks.1.moe"].get<double>(), mutual_information_bits({4, 0, 2, 2}, 2, 2),
              1e-15);
  EXPECT_FALSE(rec.contains("moe/bias_range"));  // no selection bias was tallied
}

TEST(IntervalStats, CheckpointFormIsExact) {
  IntervalStats st;
  st.add_scalar("train/loss", 0.1);
  st.add_scalar("train/loss", 1.0 / 3.0);
  st.add_layer_scalar("moe/z_loss", "blocks.3.moe", std::nextafter(1.0, 2.0));
  RoutingLog r;
  r.layer("blocks.3.moe", 2).expert_counts = {0.1, 0.7};
  st.add_routing(r);
  IntervalStats back = IntervalStats::deserialize(st.serialize());
  EXPECT_EQ(back.serialize(), st.serialize());
  EXPECT_EQ(back.to_record(7).fields().dump(), st.to_record(7).fields().dump());
  EXPECT_EQ(back.mean("train/loss"), st.mean("train/loss"));
  EXPECT_TRUE(std::isnan(IntervalStats().mean("train/loss")));
}

// Aux terms carry the path of the module that added them; the metric name is path + "." + term.
TEST(IntervalStats, AuxLossNamesAreModulePaths) {
  using moelab::nn::AuxLoss;
  EXPECT_EQ((AuxLoss{"blocks.3.ffn", "switch_loss", {}, 1.0}).full_name(), "blocks.3.ffn.switch_loss");
  EXPECT_EQ((AuxLoss{"encoder.blocks.11.moe", "router_z", {}, 1.0}).full_name(), "encoder.blocks.11.moe.router_z");
  EXPECT_EQ((AuxLoss{"", "contrastive", {}, 1.0}).full_name(), "contrastive");
}

TEST(Checkpoints, OnlyCompleteOnesCountAndPruningKeepsTheNewest) {
  fs::path run = fresh_dir("run_stats", "ckpt");
  for (int step : {5, 10, 15, 20}) {
    CheckpointData d;
    d.step = step;
    d.model.emplace_back("w", moelab::Tensor::full({2}, step));
    d.state.emplace_back("optim.step", moelab::Tensor::scalar(step, moelab::DType::i64));
    d.state_metadata["step"] = std::to_string(step);
    write_checkpoint(run, d);
  }
  fs::remove(run / "ckpt" / checkpoint_dir_name(20) / "DONE");  // as if killed before DONE
  fs::create_directories(run / "ckpt" / (checkpoint_dir_name(25) + ".tmp"));
  auto all = list_checkpoints(run);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(latest_checkpoint(run)->step, 15);
  CheckpointData back = read_checkpoint(all[1]);
  EXPECT_EQ(back.step, 10);
  EXPECT_EQ(back.model[0].second.to_vector<float>(), (std::vector<float>{10, 10}));
  EXPECT_EQ(back.state_metadata["step"], "10");
  prune_checkpoints(run, 2);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(run / "ckpt")) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{checkpoint_dir_name(10), checkpoint_dir_name(15)}));
  EXPECT_EQ(checkpoint_dir_name(1000), "step_000001000");
}

// A fake run directory: config.toml and summary.json only.
void fake_run(const fs::path& dir, const std::string& router, int seed, double loss, const std::string& status = "completed") {
  write_text(dir / "config.toml", "task = \"toy_mixture\"\nseed = " + std::to_string(seed) + "\nname = \"x" +
                                      std::to_string(seed) + "\"\n[model.moe]\nrouter = \"" + router + "\"\ntop_k = 1\n");
  json s = {{"status", status}, {"steps", 10}, {"final_train_loss", loss * 2}, {"headline_metrics", {"val/loss"}},
            {"val/loss", loss}, {"label_mi_bits", {{"blocks.0.moe", 1.0}}}};
  write_text(dir / "summary.json", s.dump());
}

TEST(Compare, GroupsSeedsByTheDifferingKeys) {
  fs::path root = fresh_dir("run_stats", "compare");
  fake_run(root / "a" / "s0", "top_k", 0, 1.0);
  fake_run(root / "a" / "s1", "top_k", 1, 3.0);
  fake_run(root / "b" / "s0", "soft_moe", 0, 2.0);
  fake_run(root / "b" / "s1", "soft_moe", 1, 5.0, "failed");
  auto dirs = find_run_dirs({root});
  ASSERT_EQ(dirs.size(), 4u);
  CompareTable t = compare_runs(dirs);
  EXPECT_EQ(t.keys, (std::vector<std::string>{"model.moe.router"}));  // seed and name never group
  EXPECT_EQ(t.metrics, (std::vector<std::string>{"val/loss", "final_train_loss", "label_mi_bits/blocks.0.moe"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].key_values, (std::vector<std::string>{"\"top_k\""}));
  EXPECT_EQ(t.rows[0].runs, 2);
  EXPECT_DOUBLE_EQ(t.rows[0].mean[0], 2.0);
  EXPECT_DOUBLE_EQ(t.rows[0].std[0], std::sqrt(2.0));  // sample std of {1, 3}
  EXPECT_EQ(t.rows[1].runs, 1);
  EXPECT_EQ(t.rows[1].incomplete, 1);  // the failed run is counted, not averaged
  EXPECT_DOUBLE_EQ(t.rows[1].mean[0], 2.0);
  std::string md = compare_markdown(t);
  EXPECT_NE(md.find("| \"top_k\" | 2 | 2 ± 1.414 | 4 ± 2.828 | 1 ± 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| \"soft_moe\" | 1 (+1 incomplete) | 2 | 4 | 1 |"), std::string::npos) << md;
  EXPECT_EQ(format_mean_std(NAN, NAN, 0), "n/a");
}

}  // namespace
