// The `classify` task end to end: the default config (configs/vit_fmnist_moe.toml) runs a few steps
// through the Trainer and leaves test_accuracy, the confusion matrix, per-token routing samples, the
// per-patch expert maps and the report fragment; a resumed run reproduces the uninterrupted one;
// concurrent micro-batches (train.workers) give the weights of the one-thread run and resume exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/io/atomic_file.h"
#include "core/nn/tensor_file.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/trainer.h"
#include "vision/data/fashion_mnist.h"

namespace fs = std::filesystem;
using namespace moelab;
using namespace moelab::experiments;

namespace {

bool have_fashion_mnist() {
  const std::string dir = vision::default_fashion_mnist_dir();
  return fs::exists(dir + "/train-images-idx3-ubyte.gz") && fs::exists(dir + "/t10k-images-idx3-ubyte.gz");
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moelab_test_classify_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

// Small and quick: a few steps of the default config on subsets of the data.
std::vector<std::string> quick_overrides(int steps) {
  return {"train.epochs=0",         "train.steps=" + std::to_string(steps), "optim.warmup_steps=1",
          "data.batch_size=16",     "data.train_size=256",                  "data.val_size=64",
          "data.test_size=64",      "data.eval_batch_size=32",              "report.patch_map_images=4",
          "train.threads=1"};
}

RunOutcome run(const fs::path& dir, const std::vector<std::string>& overrides, bool resume = false) {
  Config cfg = load_run_config(std::string(MOELAB_SOURCE_DIR) + "/configs/vit_fmnist_moe.toml", overrides);
  TrainerOptions opt;
  opt.run_dir = dir;
  opt.progress = ProgressMode::None;
  opt.resume = resume;
  return run_training(cfg, opt);
}

}  // namespace

TEST(ClassifyRun, DefaultConfigRunsAFewStepsEndToEnd) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  fs::path dir = fresh_dir("e2e");
  RunOutcome out = run(dir, quick_overrides(3));
  ASSERT_EQ(out.status, "completed") << out.error;
  EXPECT_EQ(out.steps, 3);
  auto summary = nlohmann::json::parse(io::read_file_bytes((dir / "summary.json").string()));
  ASSERT_TRUE(summary["test_accuracy"].is_number()) << summary.dump(2);
  const double acc = summary["test_accuracy"].get<double>();
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  EXPECT_TRUE(summary["val/accuracy"].is_number());
  EXPECT_EQ(summary["routing_labels"].size(), 10u);
  EXPECT_EQ(summary["label_kind"], "class");
  // Two MoE blocks (every = 2 of 4): mutual information per layer.
  EXPECT_TRUE(summary["label_mi_bits"].contains("blocks.1.moe"));
  EXPECT_TRUE(summary["label_mi_bits"].contains("blocks.3.moe"));
  // The confusion matrix covers the 64 test images.
  std::ifstream csv(dir / "classify" / "confusion_test.csv");
  std::string line;
  int rows = 0;
  int64_t total = 0;
  std::getline(csv, line);
  while (std::getline(csv, line)) {
    ++rows;
    std::stringstream ss(line.substr(line.rfind('"') + 2));
    std::string cell;
    while (std::getline(ss, cell, ',')) total += std::stoll(cell);
  }
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(total, 64);
  for (const char* f : {"routing/tokens_blocks.1.moe.csv", "routing/tokens_blocks.3.moe.csv", "routing/labels_experts_blocks.3.moe.csv",
                        "classify/per_class_accuracy_test.csv", "report/index.html"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  cv::Mat maps = cv::imread((dir / "routing" / "patch_maps.png").string());
  ASSERT_FALSE(maps.empty());
  EXPECT_GT(maps.cols, 4 * 28 * 5);  // four images at scale 5
  std::string fragment = io::read_file_bytes((dir / "report" / "sections" / "classify.html").string());
  EXPECT_NE(fragment.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(fragment.find("Ankle boot"), std::string::npos);
  // Class-by-expert routing with I(class; expert) is the Trainer report's routing section (labelled by class),
  // not a second copy in the fragment.
  std::string page = io::read_file_bytes((dir / "report" / "index.html").string());
  EXPECT_NE(page.find("I(class; expert)"), std::string::npos);
  EXPECT_NE(page.find("blocks.3.moe: MI "), std::string::npos);
  EXPECT_EQ(fragment.find("I(class; expert)"), std::string::npos);
  fs::remove_all(dir);
}

namespace {
// The weights of a checkpoint as raw bytes per tensor (the file's metadata names the thread count).
std::map<std::string, std::string> final_weights(const fs::path& dir, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%09d", step);
  std::map<std::string, std::string> out;
  for (const auto& [n, t] : nn::load_tensors((dir / "ckpt" / name / "model.safetensors").string()))
    out[n] = std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}
// Runs 4 steps whole, and 2 then --resume to 4; the two step-4 weights must be identical.
void expect_resume_reproduces(const std::string& name, std::vector<std::string> overrides) {
  std::vector<std::string> common = quick_overrides(4);
  common.insert(common.end(), overrides.begin(), overrides.end());
  common.push_back("train.checkpoint_every=2");
  fs::path whole = fresh_dir(name + "_whole"), parts = fresh_dir(name + "_parts");
  ASSERT_EQ(run(whole, common).status, "completed");
  std::vector<std::string> first = common;
  first.push_back("train.steps=2");
  ASSERT_EQ(run(parts, first).status, "completed");
  RunOutcome resumed = run(parts, common, true);
  ASSERT_EQ(resumed.status, "completed") << resumed.error;
  EXPECT_EQ(resumed.steps, 4);
  EXPECT_TRUE(final_weights(whole, 4) == final_weights(parts, 4)) << "the resumed run's weights differ";
  fs::remove_all(whole);
  fs::remove_all(parts);
}
}  // namespace

TEST(ClassifyRun, ResumeReproducesTheUninterruptedRun) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  // Constant learning rate, so that stopping at step 2 and continuing to 4 follows the same schedule;
  // augmentation on, so that the data position must be restored exactly.
  expect_resume_reproduces("resume", {"optim.schedule=\"constant\"", "data.augment.crop_padding=2"});
}


TEST(ClassifyRun, TwoWorkersGiveTheWeightsOfTheOneThreadRun) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  // Two micro-batches per step; the aux-loss-free bias update checks that the replicas' selection counts
  // reach the model. No routing noise, so the two runs do the same floating-point operations.
  for (const char* router : {"model.moe.switch_loss=0.01", "model.moe.selection_bias=true"}) {
    SCOPED_TRACE(router);
    std::vector<std::string> common = quick_overrides(3);
    for (const char* o : {"train.grad_accum=2", "data.augment.horizontal_flip=true"}) common.push_back(o);
    common.push_back(router);
    fs::path one = fresh_dir("one_worker"), two = fresh_dir("two_workers");
    RunOutcome a = run(one, common);  // train.threads = 1: every op runs serially, as inside a worker
    ASSERT_EQ(a.status, "completed") << a.error;
    common.push_back("train.threads=2");
    common.push_back("train.workers=2");
    RunOutcome b = run(two, common);
    ASSERT_EQ(b.status, "completed") << b.error;
    EXPECT_TRUE(final_weights(one, 3) == final_weights(two, 3)) << "train.workers = 2 changed the weights";
    // The aux-loss-free biases are buffers saved with the weights, and the update moved them.
    if (std::string(router).find("selection_bias") != std::string::npos) {
      auto w = final_weights(one, 3);
      ASSERT_TRUE(w.count("blocks.1.moe.router.bias")) << "the router bias is not in model.safetensors";
      EXPECT_NE(w["blocks.1.moe.router.bias"], std::string(w["blocks.1.moe.router.bias"].size(), '\0'));
    }
    auto sa = nlohmann::json::parse(io::read_file_bytes((one / "summary.json").string()));
    auto sb = nlohmann::json::parse(io::read_file_bytes((two / "summary.json").string()));
    EXPECT_EQ(sa["test_accuracy"], sb["test_accuracy"]);
    fs::remove_all(one);
    fs::remove_all(two);
  }
}

TEST(ClassifyRun, WorkersWithRoutingNoiseResumeExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  // Noise draws come from streams forked per (step, micro-batch): a resumed run repeats them.
  expect_resume_reproduces("workers", {"optim.schedule=\"constant\"", "train.grad_accum=2", "train.workers=2",
                                       "train.threads=2", "model.moe.noise=\"jitter\"", "model.moe.jitter_eps=0.1"});
}
