// Interval statistics for studies over seeds and tasks (experiments/lib/aggregate_stats.h,
// compare_aggregate.h): IQM, percentiles, optimality gap and probability of improvement on hand-computed
// cases; the stratified bootstrap against a plain loop and against the exact resampling distribution;
// `moelab compare`'s per-game and across-game rows with the protocol recorded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/util/check.h"
#include "core/util/rng.h"
#include "experiments/lib/aggregate_stats.h"
#include "experiments/lib/compare.h"
#include "experiments/lib/compare_aggregate.h"
#include "moelab_cli_util.h"

using namespace moelab::experiments;
using namespace moelab::testing;
using nlohmann::json;

namespace {

TEST(AggregateStats, InterquartileMeanDropsAQuarterAtEachEnd) {
  EXPECT_DOUBLE_EQ(interquartile_mean({4, 1, 3, 2}), 2.5);             // cut 1: mean(2, 3)
  EXPECT_DOUBLE_EQ(interquartile_mean({5, 1, 4, 2, 3}), 3.0);          // cut 1: mean(2, 3, 4)
  EXPECT_DOUBLE_EQ(interquartile_mean({100, 1, 2, 3, 4, 5, 6, -50}), 3.5);  // cut 2: mean(2, 3, 4, 5)
  EXPECT_DOUBLE_EQ(interquartile_mean({1, 2, 9}), 4.0);                // n < 4: nothing cut
  EXPECT_DOUBLE_EQ(interquartile_mean({7}), 7.0);
  EXPECT_THROW(interquartile_mean({}), moelab::Error);
}

TEST(AggregateStats, PercentilesInterpolateLinearly) {
  const std::vector<double> s = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_of_sorted(s, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_of_sorted(s, 100), 4.0);
  EXPECT_DOUBLE_EQ(percentile_of_sorted(s, 25), 1.75);  // position 0.75
  EXPECT_DOUBLE_EQ(percentile_of_sorted(s, 50), 2.5);
  EXPECT_NEAR(percentile_of_sorted(s, 97.5), 3.925, 1e-12);  // position 2.925
  EXPECT_DOUBLE_EQ(median_of({3, 1, 2}), 2.0);
  EXPECT_THROW(percentile_of_sorted(s, 101), moelab::Error);
}

TEST(AggregateStats, OptimalityGapAndProbabilityOfImprovement) {
  EXPECT_NEAR(optimality_gap({0.5, 1.2, 0.8}, 1.0), (0.5 + 0.0 + 0.2) / 3, 1e-12);
  // One task: x = {1, 3} against y = {2, 2}: 3 beats both, 1 neither -> 2 of 4 pairs.
  EXPECT_DOUBLE_EQ(probability_of_improvement({{1, 3}}, {{2, 2}}), 0.5);
  // Ties count a half; tasks are averaged with equal weight whatever their runs.
  EXPECT_DOUBLE_EQ(probability_of_improvement({{2}}, {{2}}), 0.5);
  EXPECT_DOUBLE_EQ(probability_of_improvement({{5}, {0, 0, 0}}, {{1}, {1}}), 0.5);
  EXPECT_THROW(probability_of_improvement({{1}}, {{1}, {2}}), moelab::Error);
}

// The same resampling written as a plain loop, draw for draw: task by task, run by run.
Interval naive_bootstrap_iqm(const TaskScores& scores, int64_t reps, uint64_t seed, double confidence) {
  moelab::RngStream rng(seed, "bootstrap");
  std::vector<double> stats;
  for (int64_t r = 0; r < reps; ++r) {
    std::vector<double> pooled;
    for (const auto& task : scores)
      for (size_t i = 0; i < task.size(); ++i) pooled.push_back(task[rng.below(task.size())]);
    std::sort(pooled.begin(), pooled.end());
    const size_t cut = pooled.size() / 4;
    double sum = 0;
    for (size_t i = cut; i < pooled.size() - cut; ++i) sum += pooled[i];
    stats.push_back(sum / static_cast<double>(pooled.size() - 2 * cut));
  }
  std::sort(stats.begin(), stats.end());
  auto pct = [&](double p) {
    double pos = p / 100 * static_cast<double>(stats.size() - 1);
    size_t lo = static_cast<size_t>(pos);
    size_t hi = std::min(lo + 1, stats.size() - 1);
    return stats[lo] + (pos - static_cast<double>(lo)) * (stats[hi] - stats[lo]);
  };
  const double tail = (1 - confidence) / 2 * 100;
  return {NAN, pct(tail), pct(100 - tail)};
}

TEST(AggregateStats, BootstrapEqualsAPlainLoop) {
  const TaskScores scores = {{1.5, 9, 3, 4.25, 7}, {0.1, 0.4, 0.2, 0.9, 0.3, 0.35}, {20, 21}};
  BootstrapOptions o;
  o.replicates = 3000;
  o.seed = 11;
  Interval got = stratified_bootstrap(scores, iqm_over_tasks, o);
  Interval want = naive_bootstrap_iqm(scores, o.replicates, o.seed, o.confidence);
  EXPECT_DOUBLE_EQ(got.point, iqm_over_tasks(scores));
  EXPECT_DOUBLE_EQ(got.low, want.low);
  EXPECT_DOUBLE_EQ(got.high, want.high);
  EXPECT_LT(got.low, got.high);
  // Deterministic for a seed; another seed draws other resamples.
  Interval again = stratified_bootstrap(scores, iqm_over_tasks, o);
  EXPECT_EQ(again.low, got.low);
  EXPECT_EQ(again.high, got.high);
  o.seed = 12;
  Interval other = stratified_bootstrap(scores, iqm_over_tasks, o);
  EXPECT_TRUE(other.low != got.low || other.high != got.high);
  // A lower confidence gives a narrower interval.
  o.confidence = 0.5;
  Interval narrow = stratified_bootstrap(scores, iqm_over_tasks, o);
  EXPECT_LT(narrow.high - narrow.low, other.high - other.low);
}

TEST(AggregateStats, ResamplesWithinEachTaskOnly) {
  // Each task's runs agree, so every stratified resample keeps 3 zeros and 3 tens: the mean is always 5.
  // Pooling the runs before resampling would spread it over 0..10.
  const TaskScores scores = {{0, 0, 0}, {10, 10, 10}};
  BootstrapOptions o;
  o.replicates = 500;
  Interval m = stratified_bootstrap(scores, mean_over_tasks, o);
  EXPECT_DOUBLE_EQ(m.point, 5.0);
  EXPECT_DOUBLE_EQ(m.low, 5.0);
  EXPECT_DOUBLE_EQ(m.high, 5.0);
  EXPECT_THROW(stratified_bootstrap({{1}, {}}, mean_over_tasks, o), moelab::Error);
}

TEST(AggregateStats, ReplicatesFollowTheExactResamplingDistribution) {
  // Two tasks of 3 runs: 3^3 * 3^3 = 729 equally likely resamples. The frequency of each value of the
  // mean over many replicates must match its exact probability (4.5 binomial standard errors).
  const TaskScores scores = {{0, 1, 5}, {2, 3, 11}};
  std::map<double, double> exact;
  for (int a = 0; a < 27; ++a)
    for (int b = 0; b < 27; ++b) {
      double sum = scores[0][a % 3] + scores[0][a / 3 % 3] + scores[0][a / 9] + scores[1][b % 3] + scores[1][b / 3 % 3] +
                   scores[1][b / 9];
      exact[sum] += 1.0 / 729;
    }
  std::map<double, double> seen;
  int64_t calls = 0;
  BootstrapOptions o;
  o.replicates = 40000;
  o.seed = 3;
  stratified_bootstrap(scores, [&](const TaskScores& s) {
    ++calls;
    double sum = 0;
    for (const auto& t : s) {
      EXPECT_EQ(t.size(), 3u);
      for (double v : t) sum += v;
    }
    seen[sum] += 1;
    return sum / 6;
  }, o);
  EXPECT_EQ(calls, o.replicates + 1);  // the replicates and the point estimate
  seen[mean_over_tasks(scores) * 6] -= 1;
  for (const auto& [sum, p] : exact) {
    const double freq = seen[sum] / static_cast<double>(o.replicates);
    EXPECT_NEAR(freq, p, 4.5 * std::sqrt(p * (1 - p) / static_cast<double>(o.replicates))) << "sum " << sum;
  }
  for (const auto& [sum, count] : seen) EXPECT_TRUE(count == 0 || exact.count(sum)) << "impossible sum " << sum;
}

// ---- runs -> rows ----

void fake_rl_run(const fs::path& dir, const std::string& game, const std::string& router, int seed, double ret) {
  write_text(dir / "config.toml", "task = \"rl\"\nseed = " + std::to_string(seed) + "\nname = \"r" + std::to_string(seed) +
                                      "\"\n[env]\ngame = \"" + game + "\"\nprotocol = \"gymnax\"\n[model.moe]\nrouter = \"" +
                                      router + "\"\n");
  json s = {{"status", "completed"}, {"steps", 10}, {"headline_metrics", {"eval/return"}}, {"eval/return", ret}};
  write_text(dir / "summary.json", s.dump());
}

// Two routers x two games x 5 seeds, returns chosen so that every figure is a small fraction.
fs::path make_study(const std::string& name) {
  fs::path root = fresh_dir("aggregate_stats", name);
  const std::map<std::pair<std::string, std::string>, std::vector<double>> returns = {
      {{"breakout", "top_k"}, {1, 2, 3, 4, 10}},
      {{"breakout", "soft_moe"}, {2, 3, 4, 5, 6}},
      {{"asterix", "top_k"}, {0, 0, 1, 1, 2}},
      {{"asterix", "soft_moe"}, {1, 1, 1, 2, 3}},
  };
  for (const auto& [key, values] : returns)
    for (int s = 0; s < 5; ++s)
      fake_rl_run(root / (key.second + "_" + key.first) / ("seed_" + std::to_string(s)), key.first, key.second, s, values[s]);
  return root;
}

const AggregateRow& row_of(const AggregateTable& t, const std::string& router, const std::string& task) {
  for (const auto& r : t.rows)
    if (t.groups[r.group].key_values == std::vector<std::string>{"\"" + router + "\""} && r.task == task) return r;
  throw std::runtime_error("no row " + router + "/" + task);
}

TEST(CompareAggregate, PerGameAndAcrossGamesWithTheProtocol) {
  fs::path root = make_study("study");
  auto dirs = find_run_dirs({root});
  ASSERT_EQ(dirs.size(), 20u);
  AggregateOptions o;
  o.bootstrap.replicates = 2000;
  AggregateTable t = aggregate_runs(dirs, o);
  EXPECT_EQ(t.stratify_by, "env.game");  // found among the default keys
  EXPECT_EQ(t.keys, (std::vector<std::string>{"model.moe.router"}));  // the game and the seed do not group
  ASSERT_EQ(t.groups.size(), 2u);
  for (const auto& g : t.groups) EXPECT_EQ(g.protocol, "gymnax");
  ASSERT_EQ(t.rows.size(), 6u);  // per group: 2 games + all

  // Groups come in run-path order: soft_moe_* sorts before top_k_*, so soft_moe is the first group.
  EXPECT_EQ(t.groups[0].key_values, (std::vector<std::string>{"\"soft_moe\""}));
  const AggregateRow& tk_b = row_of(t, "top_k", "breakout");
  EXPECT_EQ(tk_b.runs, 5);
  EXPECT_TRUE(tk_b.intervals);
  EXPECT_DOUBLE_EQ(tk_b.iqm.point, 3.0);  // mean(2, 3, 4)
  EXPECT_DOUBLE_EQ(tk_b.mean.point, 4.0);
  EXPECT_LE(tk_b.iqm.low, tk_b.iqm.point);
  EXPECT_GE(tk_b.iqm.high, tk_b.iqm.point);
  EXPECT_GE(tk_b.iqm.low, 1.0);
  EXPECT_LE(tk_b.iqm.high, 10.0);
  EXPECT_NEAR(row_of(t, "top_k", "asterix").iqm.point, 2.0 / 3, 1e-12);  // mean(0, 1, 1)
  EXPECT_NEAR(row_of(t, "soft_moe", "asterix").iqm.point, 4.0 / 3, 1e-12);

  // Across games, normalized by each game's range over all 20 runs (breakout 1..10, asterix 0..3):
  // top_k -> {0, 1/9, 2/9, 3/9, 1} and {0, 0, 1/3, 1/3, 2/3}; IQM drops 2 of 10 at each end -> 2/9.
  const AggregateRow& tk_all = row_of(t, "top_k", "all");
  EXPECT_EQ(tk_all.tasks, 2);
  EXPECT_EQ(tk_all.runs, 10);
  EXPECT_NEAR(tk_all.iqm.point, 2.0 / 9, 1e-12);
  EXPECT_NEAR(tk_all.mean.point, 0.3, 1e-12);
  EXPECT_NEAR(tk_all.optimality_gap.point, 0.7, 1e-12);
  EXPECT_LE(tk_all.optimality_gap.low, 0.7);
  EXPECT_GE(tk_all.optimality_gap.high, 0.7);
  // P(top_k beats soft_moe): breakout 9.5 of 25 pairs, asterix 6.5 of 25 -> mean 0.32.
  EXPECT_TRUE(tk_all.has_improvement);
  EXPECT_NEAR(tk_all.improvement.point, (9.5 / 25 + 6.5 / 25) / 2, 1e-12);
  EXPECT_NEAR(row_of(t, "top_k", "breakout").improvement.point, 9.5 / 25, 1e-12);
  EXPECT_FALSE(row_of(t, "soft_moe", "all").has_improvement);  // the first group is the baseline

  std::string md = aggregate_markdown(t);
  EXPECT_NE(md.find("| \"top_k\" | gymnax | eval/return | breakout | 5 | 3 ["), std::string::npos) << md;
  json j = json::parse(aggregate_json(t));
  EXPECT_EQ(j["stratify_by"], "env.game");
  EXPECT_EQ(j["rows"][0]["protocol"], "gymnax");
  EXPECT_EQ(j["normalization"]["eval/return"]["breakout"], json::array({1.0, 10.0}));

  // The mean ± std table keeps the protocol as a column although every run shares it.
  CompareTable c = compare_runs(dirs);
  EXPECT_NE(std::find(c.keys.begin(), c.keys.end(), "env.protocol"), c.keys.end());
}

TEST(CompareAggregate, TooFewSeedsGiveNoIntervalsAndReferencesNormalize) {
  fs::path root = make_study("few");
  AggregateOptions o;
  o.min_runs = 6;
  o.bootstrap.replicates = 200;
  o.reference["breakout"] = {0, 20};
  o.reference["asterix"] = {0, 4};
  AggregateTable t = aggregate_runs(find_run_dirs({root}), o);
  for (const auto& r : t.rows) EXPECT_FALSE(r.intervals) << r.task;
  EXPECT_EQ(format_interval(row_of(t, "top_k", "breakout").iqm, false), "3");
  EXPECT_FALSE(has_intervals(t));
  // top_k normalized by the references: {0.05, 0.1, 0.15, 0.2, 0.5} and {0, 0, 0.25, 0.25, 0.5}: mean 2/10.
  EXPECT_NEAR(row_of(t, "top_k", "all").mean.point, 0.2, 1e-12);
  EXPECT_EQ(t.normalization.at("eval/return").at("asterix"), std::make_pair(0.0, 4.0));
  EXPECT_NE(aggregate_markdown(t).find("(< 6 in a task)"), std::string::npos);
}

TEST(CompareAggregate, MultiGameRunsCountInEachGameTheyReport) {
  // One network for all games (env.game = "all") reports eval/return/<game>; its seeds form one group
  // whose per-game rows use those values.
  fs::path root = fresh_dir("aggregate_stats", "multi");
  for (int s = 0; s < 5; ++s) {
    fs::path d = root / ("seed_" + std::to_string(s));
    write_text(d / "config.toml", "task = \"pqn\"\nseed = " + std::to_string(s) + "\n[env]\ngame = \"all\"\nprotocol = \"gymnax\"\n");
    json metrics = {{"eval/return", 0.0}, {"eval/return/breakout", 10.0 * s}, {"eval/return/asterix", 1.0 + s},
                    {"eval/episode_length", 100.0}};
    json summary = {{"status", "completed"}, {"headline_metrics", {"eval/return"}}, {"eval/return", 0.0}, {"metrics", metrics}};
    write_text(d / "summary.json", summary.dump());
  }
  AggregateOptions o;
  o.bootstrap.replicates = 200;
  AggregateTable t = aggregate_runs(find_run_dirs({root}), o);
  EXPECT_EQ(t.tasks, (std::vector<std::string>{"asterix", "breakout"}));  // "eval/episode_length" is no task
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0].task, "asterix");
  EXPECT_DOUBLE_EQ(t.rows[0].iqm.point, 3.0);  // {1..5}: mean(2, 3, 4)
  EXPECT_EQ(t.rows[1].task, "breakout");
  EXPECT_DOUBLE_EQ(t.rows[1].iqm.point, 20.0);
  EXPECT_EQ(t.rows[2].task, "all");
  EXPECT_EQ(t.rows[2].runs, 10);
  EXPECT_EQ(t.groups[0].protocol, "gymnax");
}

TEST(CompareAggregate, CommandWritesTheTablesAndRejectsABadReference) {
  fs::path root = make_study("cli");
  fs::path out = root / "tables";
  CommandResult r = run_moelab({"compare", root.string(), "--out", out.string(), "--bootstrap-reps", "500"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| model.moe.router | protocol | metric | task | runs | IQM |"), std::string::npos) << r.output;
  for (const char* f : {"compare.md", "aggregate.md", "aggregate.csv", "aggregate.json"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  json j = json::parse(read_text(out / "aggregate.json"));
  EXPECT_EQ(j["bootstrap"]["replicates"], 500);
  EXPECT_EQ(j["rows"].size(), 6u);
  r = run_moelab({"compare", root.string(), "--out", out.string(), "--reference", "breakout=5"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--reference breakout=5: expected TASK=LOW:HIGH"), std::string::npos) << r.output;
}

}  // namespace
