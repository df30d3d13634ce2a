#include "experiments/lib/tasks/retrieval_query.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/autograd/autograd.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/run_config.h"
#include "vision/data/scene_preview.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

using vision::SceneSplit;

RetrievalSession::RetrievalSession(const fs::path& run_dir, std::optional<int64_t> step) {
  const fs::path config_path = run_dir / "config.toml";
  MOELAB_CHECK(fs::exists(config_path), run_dir.string() << " has no config.toml: is it a moelab run directory?");
  Config cfg = load_run_config(config_path.string(), {});
  MOELAB_CHECK(cfg.get_string("task") == "retrieval",
               run_dir.string() << " is a run of task '" << cfg.get_string("task") << "', not 'retrieval'");
  const CheckpointInfo info = checkpoint_or_latest(run_dir, step);
  const CheckpointData d = read_checkpoint(info);
  task_ = std::make_unique<RetrievalTask>();
  TaskContext ctx;
  ctx.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  task_->build(cfg, ctx);
  model_ = task_->make_model();
  load_model_state(*model_, d, info);
  model_->eval();
  step_ = info.step;
}

std::vector<RetrievalHit> RetrievalSession::top_k(const std::vector<double>& query, const std::vector<double>& items,
                                                  SceneSplit split, int64_t k) const {
  const int64_t e = task_->embed_dim(), n = static_cast<int64_t>(items.size()) / e;
  std::vector<double> score(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < e; ++d) score[size_t(i)] += query[size_t(d)] * items[size_t(i * e + d)];
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[size_t(a)] > score[size_t(b)]; });
  std::vector<RetrievalHit> hits;
  for (int64_t r = 0; r < std::min(k, n); ++r) {
    const int64_t i = order[size_t(r)];
    hits.push_back({i, score[size_t(i)], task_->data().caption(split, i, 0).text});
  }
  return hits;
}

std::vector<RetrievalHit> RetrievalSession::scenes_for_text(const std::string& text, SceneSplit split, int64_t k) {
  NoGradGuard ng;
  auto& m = dynamic_cast<ContrastiveModel&>(*model_);
  const std::vector<double> q = task_->embed_captions(m, {text});
  std::vector<int64_t> all(static_cast<size_t>(task_->data().size(split)));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return top_k(q, task_->embed_scenes(m, split, all), split, k);
}

std::vector<RetrievalHit> RetrievalSession::captions_for_image(const std::string& image_path, SceneSplit split,
                                                               int64_t k) {
  cv::Mat bgr = cv::imread(image_path, cv::IMREAD_COLOR);
  MOELAB_CHECK(!bgr.empty(), "cannot read the image " << image_path << " (a PNG, JPEG or other OpenCV format)");
  const int canvas = task_->data().options().canvas;
  cv::Mat rgb, sized;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb, sized, cv::Size(canvas, canvas), 0, 0, cv::INTER_AREA);
  query_image_.assign(sized.data, sized.data + static_cast<size_t>(canvas) * canvas * 3);
  NoGradGuard ng;
  auto& m = dynamic_cast<ContrastiveModel&>(*model_);
  nn::Batch b;
  nn::ForwardContext ctx(b);
  const Tensor img = vision::images_to_tensor({query_image_}, canvas);
  const std::vector<double> q = task_->embed_images(m, img, Tensor(), ctx);
  std::vector<std::string> captions;
  for (int64_t i = 0; i < task_->data().size(split); ++i) captions.push_back(task_->data().caption(split, i, 0).text);
  return top_k(q, task_->embed_captions(m, captions), split, k);
}

cv::Mat RetrievalSession::draw(const std::vector<RetrievalHit>& hits, SceneSplit split, const std::string& query,
                               const std::vector<uint8_t>& query_image) const {
  std::vector<vision::PreviewTile> tiles;
  if (!query_image.empty()) tiles.push_back({query_image, {"query: " + query}, {true}});
  for (size_t r = 0; r < hits.size(); ++r) {
    char head[64];
    std::snprintf(head, sizeof head, "#%zu  scene %lld  %.3f", r + 1, static_cast<long long>(hits[r].scene),
                  hits[r].score);
    tiles.push_back({task_->data().render(split, hits[r].scene), {head, hits[r].caption}, {false, false}});
  }
  return vision::preview_sheet(tiles, task_->data().options().canvas, std::min<int>(5, int(tiles.size())), 3);
}

}  // namespace moelab::experiments
