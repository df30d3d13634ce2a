#pragma once
// Task `retrieval`: image-text retrieval on the caption scenes (vision/data/scene_dataset.h) with two towers
// (CLIP style) or one shared MoE tower (LIMoE), trained with the symmetric InfoNCE loss. docs/retrieval.md.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "experiments/lib/task.h"
#include "experiments/lib/tasks/retrieval_model.h"
#include "experiments/lib/tasks/retrieval_text.h"
#include "vision/data/scene_dataset.h"

namespace moelab::experiments {

class RetrievalTask : public Task {
 public:
  void declare_config(Schema& s) const override;
  void build(const Config& cfg, const TaskContext& ctx) override;
  std::shared_ptr<nn::Module> make_model() override;
  nn::Batch next_batch(int64_t step, int micro) override;
  StepResult train_step(nn::Module& model, const nn::Batch& batch, nn::ForwardContext& ctx) override;
  EvalResult evaluate(EvalContext& ec) override;
  int64_t micro_batches_per_epoch() const override;
  int64_t examples_per_micro_batch() const override { return batch_size_; }
  std::vector<std::string> headline_metrics() const override;
  std::vector<std::string> label_names() const override;
  std::string label_kind() const override { return one_tower_ ? "modality" : "class of the scene's first object"; }
  void save_state(TaskState& state) const override;
  void load_state(const TaskState& state) override;

  // ---- for queries (`moelab retrieve`) and tests ----
  const vision::SceneDataset& data() const { return *data_; }
  const CaptionVocabulary& vocabulary() const { return vocab_; }
  // Unit embeddings (N, E) as row-major doubles; `ctx_for` gives each batch its forward context.
  std::vector<double> embed_images(ContrastiveModel& model, const Tensor& images, const Tensor& labels,
                                   nn::ForwardContext& ctx) const;
  // Unit embeddings of captions, in eval batches, without routing records.
  std::vector<double> embed_captions(ContrastiveModel& model, const std::vector<std::string>& captions) const;
  // Unit embeddings of scenes `indices` of `split`, in eval batches, without routing records.
  std::vector<double> embed_scenes(ContrastiveModel& model, vision::SceneSplit split,
                                   const std::vector<int64_t>& indices) const;
  int64_t embed_dim() const { return embed_dim_; }

 private:
  Tensor routing_labels(const vision::SceneBatch& b, Modality modality) const;
  void reshuffle(int64_t epoch);

  uint64_t seed_ = 0;
  std::string run_dir_;
  Device device_ = Device::cpu();
  std::unique_ptr<vision::SceneDataset> data_;
  CaptionVocabulary vocab_;
  bool one_tower_ = false, bag_of_words_ = false;
  int hard_negatives_ = 0;  // NegCLIP negatives per training caption
  vision::ViTOptions image_options_;
  moe::MoEConfig image_moe_;
  TextTowerOptions text_options_;
  int64_t embed_dim_ = 64, batch_size_ = 128, eval_batch_ = 250, max_len_ = 48;
  double init_logit_scale_ = 1 / 0.07, max_logit_scale_ = 100;
  int64_t zeroshot_images_ = 2000, preview_scenes_ = 12;
  // the shuffled order of the current epoch
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace moelab::experiments
