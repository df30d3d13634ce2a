#include "vision/data/scene_dataset.h"

#include <array>
#include <string>

#include "core/util/check.h"
#include "vision/data/fashion_mnist.h"

namespace moelab::vision {
namespace {

// Draws reserved per caption and per hard-negative pair in their streams.
constexpr uint64_t kCaptionDraws = 64;
constexpr uint64_t kPairDraws = 1024;

RngStream counter_stream(uint64_t seed, const std::string& name, uint64_t index, uint64_t draws) {
  return RngStream::from_state(hash_stream_key(seed, name), index * draws);
}

}  // namespace

SceneDataset::SceneDataset(SceneDataOptions options, ImageSet train_items, ImageSet test_items)
    : options_(options),
      train_items_(std::move(train_items)),
      test_items_(std::move(test_items)),
      train_by_class_(train_items_),
      test_by_class_(test_items_),
      heldout_(options.seed, options.heldout_per_colour) {
  MOELAB_CHECK(options_.canvas >= 24, "scene canvas must be at least 24 pixels, got " << options_.canvas);
  MOELAB_CHECK(options_.train_size >= 0 && options_.test_size >= 0 && options_.heldout_size >= 0,
               "scene set sizes must be >= 0 (train " << options_.train_size << ", test " << options_.test_size
                                                      << ", heldout " << options_.heldout_size << ")");
  MOELAB_CHECK(options_.heldout_size == 0 || heldout_.count() > 0,
               "held-out scenes (" << options_.heldout_size << ") need heldout_per_colour >= 1");
}

SceneDataset SceneDataset::load(SceneDataOptions options, const std::string& fmnist_dir) {
  return SceneDataset(options, load_fashion_mnist(fmnist_dir, DataPart::train),
                      load_fashion_mnist(fmnist_dir, DataPart::test));
}

int64_t SceneDataset::size(SceneSplit split) const {
  switch (split) {
    case SceneSplit::train: return options_.train_size;
    case SceneSplit::test: return options_.test_size;
    case SceneSplit::heldout: return options_.heldout_size;
  }
  return 0;
}

void SceneDataset::check_index(SceneSplit split, int64_t index) const {
  MOELAB_CHECK(index >= 0 && index < size(split),
               "scene index " << index << " outside the " << split_name(split) << " set of " << size(split));
}

Scene SceneDataset::scene(SceneSplit split, int64_t index) const {
  check_index(split, index);
  return generate_scene(options_.seed, split, index, options_.sampling, heldout_,
                        split == SceneSplit::train ? train_by_class_ : test_by_class_);
}

Caption SceneDataset::caption(SceneSplit split, int64_t index, int64_t variant) const {
  return caption_of(scene(split, index), split, index, variant);
}

Caption SceneDataset::caption_of(const Scene& scene, SceneSplit split, int64_t index, int64_t variant) const {
  MOELAB_CHECK(variant >= 0, "caption variant must be >= 0, got " << variant);
  RngStream rng = counter_stream(options_.seed,
                                 std::string("captions/") + split_name(split) + "/" + std::to_string(variant),
                                 static_cast<uint64_t>(index), kCaptionDraws);
  return make_caption(scene, rng);
}

std::vector<uint8_t> SceneDataset::render(SceneSplit split, int64_t index) const {
  return render_scene(scene(split, index), items(split), options_.canvas);
}

SceneBatch SceneDataset::batch(SceneSplit split, const std::vector<int64_t>& indices, int64_t variant) const {
  SceneBatch b;
  b.indices = indices;
  std::vector<std::vector<uint8_t>> images;
  for (int64_t i : indices) {
    b.scenes.push_back(scene(split, i));
    images.push_back(render_scene(b.scenes.back(), items(split), options_.canvas));
    b.caption_info.push_back(caption_of(b.scenes.back(), split, i, variant));
    b.captions.push_back(b.caption_info.back().text);
  }
  b.images = images_to_tensor(images, options_.canvas);
  return b;
}

std::optional<HardNegativePair> SceneDataset::hard_negative(SceneSplit split, int64_t index, NegativeKind kind) const {
  RngStream rng = counter_stream(options_.seed,
                                 std::string("hard_negatives/") + split_name(split) + "/" + negative_kind_name(kind),
                                 static_cast<uint64_t>(index), kPairDraws);
  return hard_negative_pair(scene(split, index), kind, rng, split == SceneSplit::heldout ? nullptr : &heldout_);
}

std::vector<Caption> SceneDataset::training_negatives(int64_t index, int64_t variant, const Caption& positive,
                                                      int count) const {
  MOELAB_CHECK(count >= 0 && count <= kNegativeKinds,
               "training negatives per caption must be in [0, " << kNegativeKinds << "], got " << count);
  MOELAB_CHECK(variant >= 0, "caption variant must be >= 0, got " << variant);
  const Scene sc = scene(SceneSplit::train, index);
  RngStream rng = counter_stream(options_.seed, "training_negatives/" + std::to_string(variant),
                                 static_cast<uint64_t>(index), kPairDraws);
  std::array<int, kNegativeKinds> kinds{};
  for (int k = 0; k < kNegativeKinds; ++k) kinds[static_cast<size_t>(k)] = k;
  for (int k = kNegativeKinds - 1; k > 0; --k)
    std::swap(kinds[static_cast<size_t>(k)], kinds[rng.below(static_cast<uint64_t>(k + 1))]);
  std::vector<Caption> out;
  for (int k : kinds) {
    if (static_cast<int>(out.size()) == count) break;
    const auto kind = static_cast<NegativeKind>(k);
    if (auto neg = make_negative(positive, sc, kind, rng, &heldout_)) {
      out.push_back(std::move(*neg));
    } else if (auto pair = hard_negative_pair(sc, kind, rng, &heldout_)) {
      out.push_back(std::move(pair->negative));
    }
  }
  return out;
}

Tensor images_to_tensor(const std::vector<std::vector<uint8_t>>& images, int canvas) {
  const int64_t n = static_cast<int64_t>(images.size()), hw = static_cast<int64_t>(canvas) * canvas;
  Tensor out = Tensor::empty({n, 3, canvas, canvas});
  float* dst = out.data<float>();
  for (int64_t b = 0; b < n; ++b) {
    MOELAB_CHECK(static_cast<int64_t>(images[b].size()) == hw * 3,
                 "image " << b << " holds " << images[b].size() << " bytes, not " << canvas << "x" << canvas << "x3");
    for (int64_t p = 0; p < hw; ++p)
      for (int ch = 0; ch < 3; ++ch) dst[(b * 3 + ch) * hw + p] = images[b][p * 3 + ch] * (1.f / 255.f);
  }
  return out;
}

ProbeBatch probe_batch(const ImageSet& items, const std::vector<int64_t>& indices, int canvas, ObjectSize size) {
  ProbeBatch b;
  b.items = indices;
  std::vector<std::vector<uint8_t>> images;
  std::vector<int64_t> labels;
  for (int64_t i : indices) {
    images.push_back(render_probe(items, i, canvas, size));
    labels.push_back(items.labels[i]);
  }
  b.images = images_to_tensor(images, canvas);
  b.labels = Tensor::from_vector(labels, {static_cast<int64_t>(indices.size())});
  return b;
}

const std::vector<std::string>& prompt_templates() {
  // The first three are sentences of the caption grammar; the last two are CLIP-style.
  static const std::vector<std::string> templates = {"{}", "{} in the centre", "one item: {}", "a photo of {}",
                                                     "a picture of {}"};
  return templates;
}

std::vector<std::string> class_prompts(int cls) {
  MOELAB_CHECK(cls >= 0 && cls < kSceneClasses, "class " << cls << " outside [0, " << kSceneClasses << ")");
  const std::string noun = class_nouns()[cls];
  const std::string phrase = (std::string("aeiou").find(noun[0]) != std::string::npos ? "an " : "a ") + noun;
  std::vector<std::string> out;
  for (std::string t : prompt_templates()) out.push_back(t.replace(t.find("{}"), 2, phrase));
  return out;
}

}  // namespace moelab::vision
