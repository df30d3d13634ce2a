// A short `moelab run` of each retrieval model (two towers with MoE, one tower): the summary keys of the
// issue, the report section and files; then `moelab retrieve` on the run, and its usage errors.
#include <gtest/gtest.h>

#include "experiments/moelab_cli_util.h"
#include "vision/data/fashion_mnist.h"

using namespace moelab::testing;

namespace {

bool have_fashion_mnist() {
  return fs::exists(moelab::vision::default_fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz");
}

const std::vector<std::string> kTiny = {
    "train.steps=4",          "optim.warmup_steps=1",    "train.checkpoint_every=0", "train.threads=1",
    "data.train_size=128",    "data.test_size=40",       "data.heldout_size=40",     "data.batch_size=16",
    "eval.zeroshot_images=20", "eval.preview_scenes=4",  "image.dim=32",             "image.depth=2",
    "image.num_heads=2",      "text.dim=32",             "text.num_heads=2"};

class RetrievalRun : public ::testing::TestWithParam<const char*> {};

TEST_P(RetrievalRun, WritesTheSummaryKeysReportAndAnswersQueries) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed (dataset-fashion-mnist)";
  const std::string config = GetParam();
  const fs::path dir = fresh_dir("retrieval_run", config);
  std::vector<std::string> args = {"run", std::string(MOELAB_SOURCE_DIR) + "/configs/" + config + ".toml"};
  args.insert(args.end(), kTiny.begin(), kTiny.end());
  args.insert(args.end(), {"--run-dir", (dir / "run").string()});
  const CommandResult r = run_moelab(args, {"OMP_NUM_THREADS=1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto summary = nlohmann::json::parse(read_text(dir / "run" / "summary.json"));
  for (const char* key : {"test/i2t_r1", "test/t2i_r1", "heldout/i2t_r1", "heldout/t2i_r1",
                          "zeroshot/fmnist_accuracy"}) {
    ASSERT_TRUE(summary["metrics"].contains(key)) << key;
    const double v = summary["metrics"][key].get<double>();
    EXPECT_GE(v, 0.0) << key;
    EXPECT_LE(v, 1.0) << key;
  }
  for (const char* kind : {"colour_swap", "position_swap", "object_replace", "count_change"})
    EXPECT_TRUE(summary["metrics"].contains(std::string("hardneg/") + kind + "_accuracy")) << kind;
  EXPECT_DOUBLE_EQ(summary["metrics"]["chance/r1"].get<double>(), 1.0 / 40);
  const std::string section = read_text(dir / "run" / "report" / "sections" / "retrieval.html");
  EXPECT_NE(section.find("Hard negatives"), std::string::npos);
  EXPECT_NE(section.find("data:image/png;base64,"), std::string::npos);  // the scene preview
  EXPECT_TRUE(fs::exists(dir / "run" / "retrieval" / "scene_preview.png"));
  if (config == "retrieval_limoe") {
    EXPECT_TRUE(summary["metrics"].contains("limoe/modality_specific_share"));
    EXPECT_TRUE(fs::exists(dir / "run" / "retrieval" / "modality_experts_blocks.1.moe.csv"));
    EXPECT_EQ(summary["routing_labels"], nlohmann::json::array({"image", "text"}));
  }

  const CommandResult q = run_moelab({"retrieve", (dir / "run").string(), "--text", "a red bag", "--top", "3",
                                      "--out", (dir / "query.png").string()},
                                     {"OMP_NUM_THREADS=1"});
  ASSERT_EQ(q.exit_code, 0) << q.output;
  EXPECT_NE(q.output.find("3. scene "), std::string::npos) << q.output;
  EXPECT_TRUE(fs::exists(dir / "query.png"));
  const CommandResult qi = run_moelab({"retrieve", (dir / "run").string(), "--image",
                                       (dir / "run" / "retrieval" / "scene_preview.png").string(), "--top", "2",
                                       "--out", (dir / "query_image.png").string()},
                                      {"OMP_NUM_THREADS=1"});
  ASSERT_EQ(qi.exit_code, 0) << qi.output;
  EXPECT_NE(qi.output.find("2. scene "), std::string::npos) << qi.output;
  // neither or both of --text and --image: a usage error
  EXPECT_EQ(run_moelab({"retrieve", (dir / "run").string()}).exit_code, 2);
  EXPECT_EQ(run_moelab({"retrieve", (dir / "run").string(), "--text", "a bag", "--image",
                        (dir / "query.png").string()})
                .exit_code,
            2);
}

INSTANTIATE_TEST_SUITE_P(Configs, RetrievalRun, ::testing::Values("retrieval_two_tower_moe", "retrieval_limoe"));

}  // namespace
