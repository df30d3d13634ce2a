#pragma once
// Queries against a trained retrieval run (`moelab retrieve`): the top scenes for a text, the top captions
// for an image file, and a picture of the hits.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "experiments/lib/tasks/retrieval.h"

namespace moelab::experiments {

struct RetrievalHit {
  int64_t scene = 0;    // index in the searched split
  double score = 0;     // cosine similarity
  std::string caption;  // the scene's caption (variant 0)
};

class RetrievalSession {
 public:
  // Rebuilds the run's task and model from config.toml and the checkpoint (the newest when step is empty).
  RetrievalSession(const std::filesystem::path& run_dir, std::optional<int64_t> step);
  int64_t checkpoint_step() const { return step_; }
  const RetrievalTask& task() const { return *task_; }
  // The k scenes of `split` closest to the text.
  std::vector<RetrievalHit> scenes_for_text(const std::string& text, vision::SceneSplit split, int64_t k);
  // The k captions (variant 0 of each scene of `split`) closest to an image file (resized to the canvas).
  std::vector<RetrievalHit> captions_for_image(const std::string& image_path, vision::SceneSplit split, int64_t k);
  // A sheet: the query image (if any) first, then each hit's scene with its rank, score and caption.
  cv::Mat draw(const std::vector<RetrievalHit>& hits, vision::SceneSplit split, const std::string& query,
               const std::vector<uint8_t>& query_image = {}) const;
  // The last image query, (canvas, canvas, 3) RGB.
  const std::vector<uint8_t>& last_query_image() const { return query_image_; }

 private:
  std::vector<RetrievalHit> top_k(const std::vector<double>& query, const std::vector<double>& items,
                                  vision::SceneSplit split, int64_t k) const;
  std::unique_ptr<RetrievalTask> task_;
  std::shared_ptr<nn::Module> model_;
  int64_t step_ = 0;
  std::vector<uint8_t> query_image_;
};

}  // namespace moelab::experiments
