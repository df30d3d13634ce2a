#pragma once
// Compositional scenes: 1 to 3 tinted Fashion-MNIST items on a black RGB canvas, one per cell of a 3x3 grid,
// at one of two sizes. A Scene is plain data; generation is a pure function of (seed, split, index) through
// a counter-based stream, and rendering is a pure function of the scene and the item images.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "vision/data/image_set.h"

namespace moelab::vision {

inline constexpr int kSceneColours = 8;
inline constexpr int kSceneClasses = 10;  // the Fashion-MNIST classes
inline constexpr int kSceneCells = 9;     // a 3x3 grid: cell = row * 3 + col
inline constexpr int kMaxSceneObjects = 3;

enum class ObjectSize { small = 0, large = 1 };

// Colour words and their tints (RGB multiplied onto the grey item).
const std::array<std::string, kSceneColours>& colour_names();
std::array<uint8_t, 3> colour_rgb(int colour);
// Caption nouns of the Fashion-MNIST classes ("t-shirt", ..., "ankle boot") and their plurals.
const std::array<std::string, kSceneClasses>& class_nouns();
const std::array<std::string, kSceneClasses>& class_plurals();
inline int cell_row(int cell) { return cell / 3; }
inline int cell_col(int cell) { return cell % 3; }

struct SceneObject {
  int cls = 0;     // Fashion-MNIST class in [0, 10)
  int colour = 0;  // [0, kSceneColours)
  int cell = 0;    // [0, 9), row-major
  ObjectSize size = ObjectSize::large;
  int64_t item = 0;  // index of the item image in its Fashion-MNIST part (train or test)
  bool operator==(const SceneObject&) const = default;
};

struct Scene {
  std::vector<SceneObject> objects;  // 1..3, distinct cells
  bool operator==(const Scene&) const = default;
};

enum class SceneSplit { train, test, heldout };
const char* split_name(SceneSplit split);

// The (colour, class) pairs kept out of training and in-distribution test scenes (CoGenT style).
// `per_colour` classes per colour from a seeded class permutation, cyclically, so that each class is held
// out for at most `per_colour` colours and every colour and class still occurs in training.
class HeldoutPairs {
 public:
  HeldoutPairs() = default;
  HeldoutPairs(uint64_t seed, int per_colour);
  bool contains(int colour, int cls) const { return held_[colour * kSceneClasses + cls]; }
  // The pairs as (colour, class), colour-major.
  std::vector<std::pair<int, int>> pairs() const;
  int count() const;

 private:
  std::array<bool, kSceneColours * kSceneClasses> held_{};
};

// Items of one Fashion-MNIST part grouped by class, so scenes can draw "an item of class c".
struct ItemsByClass {
  std::array<std::vector<int64_t>, kSceneClasses> items;
  explicit ItemsByClass(const ImageSet& set);
  ItemsByClass() = default;
};

struct SceneSampling {
  int min_objects = 1, max_objects = 3;
  double duplicate_prob = 0.25;  // chance that a second object repeats the first's (colour, class)
  double small_prob = 0.5;       // chance of the small size per object
};

// Scene `index` of `split`, drawn from its own counter range of the stream (seed, "scenes/<split>"):
// train and test scenes avoid every held-out pair, held-out scenes contain at least one.
Scene generate_scene(uint64_t seed, SceneSplit split, int64_t index, const SceneSampling& sampling,
                     const HeldoutPairs& heldout, const ItemsByClass& items);

// Pixel rectangle of a cell and of an object's square inside it (canvas = H = W pixels).
struct PixelRect {
  int x = 0, y = 0, w = 0, h = 0;
};
PixelRect object_rect(int canvas, int cell, ObjectSize size);

// The scene as RGB uint8 in (H, W, 3) order: black canvas, each item resized (area interpolation in integer
// arithmetic, so bytes agree across machines) into its square and tinted: intensity v -> colour * min(1, v / (0.6 x the item's maximum)). `items` is the
// Fashion-MNIST part the scene's item indices refer to.
std::vector<uint8_t> render_scene(const Scene& scene, const ImageSet& items, int canvas);

// Area resampling of a (h, w) grey image to (out_h, out_w): each output pixel is the overlap-weighted mean
// of the source pixels it covers, rounded half up; exact integer arithmetic.
std::vector<uint8_t> area_resize(const uint8_t* src, int h, int w, int out_h, int out_w);

// One untinted item (grey on black in all three channels: the tint is white) in the centre cell at `size`.
std::vector<uint8_t> render_probe(const ImageSet& items, int64_t item, int canvas, ObjectSize size);

}  // namespace moelab::vision
