#pragma once
// The scene data set of the retrieval task: scenes, captions, hard negatives, image batches and the
// zero-shot Fashion-MNIST probes, each computed on demand from counter-based streams (docs/scenes.md).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"
#include "vision/data/captions.h"
#include "vision/data/hard_negatives.h"
#include "vision/data/image_set.h"
#include "vision/data/scene.h"

namespace moelab::vision {

struct SceneDataOptions {
  uint64_t seed = 0;
  int canvas = 64;  // H = W pixels
  int64_t train_size = 20000, test_size = 1000, heldout_size = 1000;
  SceneSampling sampling;
  int heldout_per_colour = 1;  // 8 held-out (colour, class) pairs
};

struct SceneBatch {
  Tensor images;                      // (B, 3, H, W) f32 in [0, 1]
  std::vector<std::string> captions;  // B caption strings
  std::vector<Caption> caption_info;  // B captions with meaning and template
  std::vector<Scene> scenes;          // B scenes (objects with class, colour, cell, size, item)
  std::vector<int64_t> indices;       // scene indices in their split
};

class SceneDataset {
 public:
  // Train scenes draw items from `train_items`, test and held-out scenes from `test_items`.
  SceneDataset(SceneDataOptions options, ImageSet train_items, ImageSet test_items);
  // Loads both Fashion-MNIST parts from `fmnist_dir` (see fashion_mnist.h).
  static SceneDataset load(SceneDataOptions options, const std::string& fmnist_dir);

  const SceneDataOptions& options() const { return options_; }
  const HeldoutPairs& heldout_pairs() const { return heldout_; }
  int64_t size(SceneSplit split) const;
  // The Fashion-MNIST part whose items a split's scenes show.
  const ImageSet& items(SceneSplit split) const { return split == SceneSplit::train ? train_items_ : test_items_; }

  Scene scene(SceneSplit split, int64_t index) const;
  // Caption `variant` (any value >= 0; e.g. the epoch) of a scene, template drawn per (index, variant).
  Caption caption(SceneSplit split, int64_t index, int64_t variant = 0) const;
  // (H, W, 3) RGB uint8.
  std::vector<uint8_t> render(SceneSplit split, int64_t index) const;
  // The scenes at `indices` with caption `variant` of each.
  SceneBatch batch(SceneSplit split, const std::vector<int64_t>& indices, int64_t variant = 0) const;
  // A (true caption, negative) pair of `kind` for a scene, or nullopt when the scene admits none. Negatives
  // of train and test scenes never name a held-out pair; those of held-out scenes may.
  std::optional<HardNegativePair> hard_negative(SceneSplit split, int64_t index, NegativeKind kind) const;
  // Training negatives (NegCLIP): up to `count` (0-4) hard negatives of `positive`, caption `variant` of train
  // scene `index`, one per kind, the kinds in an order drawn per (index, variant). A kind `positive` does
  // not admit is taken from another template of the scene; kinds the scene admits in no template are
  // skipped. They never name a held-out pair, and only train scenes have them.
  std::vector<Caption> training_negatives(int64_t index, int64_t variant, const Caption& positive, int count) const;

 private:
  void check_index(SceneSplit split, int64_t index) const;
  Caption caption_of(const Scene& scene, SceneSplit split, int64_t index, int64_t variant) const;

  SceneDataOptions options_;
  ImageSet train_items_, test_items_;
  ItemsByClass train_by_class_, test_by_class_;
  HeldoutPairs heldout_;
};

// Zero-shot probes: Fashion-MNIST test items, one per image, centred, untinted (grey on black).
struct ProbeBatch {
  Tensor images;               // (B, 3, H, W) f32 in [0, 1]
  Tensor labels;               // (B) i64 class
  std::vector<int64_t> items;  // item indices
};
ProbeBatch probe_batch(const ImageSet& items, const std::vector<int64_t>& indices, int canvas,
                       ObjectSize size = ObjectSize::large);
// Prompt templates; "{}" stands for the class with its article ("an ankle boot").
const std::vector<std::string>& prompt_templates();
// Every template filled with class `cls`.
std::vector<std::string> class_prompts(int cls);

// (N, H, W, 3) uint8 images -> (N, 3, H, W) f32 in [0, 1].
Tensor images_to_tensor(const std::vector<std::vector<uint8_t>>& images, int canvas);

}  // namespace moelab::vision
