#include "vision/data/scene.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/util/check.h"
#include "core/util/rng.h"

namespace moelab::vision {
namespace {

// Draws reserved per scene in its stream; generate_scene takes fewer (checked).
constexpr uint64_t kSceneDraws = 64;
// Intensities at or above this share of the item's maximum get the full colour.
constexpr double kFullTint = 0.6;

}  // namespace

const std::array<std::string, kSceneColours>& colour_names() {
  static const std::array<std::string, kSceneColours> names = {"red",  "orange", "yellow", "green",
                                                                "cyan", "blue",   "purple", "pink"};
  return names;
}

std::array<uint8_t, 3> colour_rgb(int colour) {
  static const std::array<std::array<uint8_t, 3>, kSceneColours> rgb = {{{230, 30, 30},
                                                                         {255, 140, 0},
                                                                         {245, 230, 20},
                                                                         {30, 200, 40},
                                                                         {0, 220, 230},
                                                                         {40, 80, 255},
                                                                         {150, 40, 210},
                                                                         {255, 120, 190}}};
  MOELAB_CHECK(colour >= 0 && colour < kSceneColours, "colour " << colour << " outside [0, " << kSceneColours << ")");
  return rgb[colour];
}

const std::array<std::string, kSceneClasses>& class_nouns() {
  static const std::array<std::string, kSceneClasses> nouns = {
      "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"};
  return nouns;
}

const std::array<std::string, kSceneClasses>& class_plurals() {
  static const std::array<std::string, kSceneClasses> plurals = {
      "t-shirts", "trousers", "pullovers", "dresses", "coats", "sandals", "shirts", "sneakers", "bags", "ankle boots"};
  return plurals;
}

const char* split_name(SceneSplit split) {
  switch (split) {
    case SceneSplit::train: return "train";
    case SceneSplit::test: return "test";
    case SceneSplit::heldout: return "heldout";
  }
  return "?";
}

HeldoutPairs::HeldoutPairs(uint64_t seed, int per_colour) {
  MOELAB_CHECK(per_colour >= 0 && per_colour <= 3,
               "held-out classes per colour must be in [0, 3] so every class keeps training colours, got "
                   << per_colour);
  std::array<int, kSceneClasses> perm;
  std::iota(perm.begin(), perm.end(), 0);
  RngStream rng(seed, "scenes/heldout_pairs");
  for (int i = kSceneClasses - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  // Colour c holds out perm[c], perm[c + 1], ...: each class is held out for at most per_colour colours.
  for (int c = 0; c < kSceneColours; ++c)
    for (int j = 0; j < per_colour; ++j) held_[c * kSceneClasses + perm[(c + j) % kSceneClasses]] = true;
}

std::vector<std::pair<int, int>> HeldoutPairs::pairs() const {
  std::vector<std::pair<int, int>> out;
  for (int c = 0; c < kSceneColours; ++c)
    for (int k = 0; k < kSceneClasses; ++k)
      if (contains(c, k)) out.emplace_back(c, k);
  return out;
}

int HeldoutPairs::count() const { return static_cast<int>(std::count(held_.begin(), held_.end(), true)); }

ItemsByClass::ItemsByClass(const ImageSet& set) {
  for (int64_t i = 0; i < set.count; ++i) {
    const int32_t label = set.labels[i];
    MOELAB_CHECK(label >= 0 && label < kSceneClasses,
                 "scene items: label " << label << " of image " << i << " is not a Fashion-MNIST class");
    items[label].push_back(i);
  }
}

Scene generate_scene(uint64_t seed, SceneSplit split, int64_t index, const SceneSampling& sampling,
                     const HeldoutPairs& heldout, const ItemsByClass& items) {
  MOELAB_CHECK(sampling.min_objects >= 1 && sampling.min_objects <= sampling.max_objects &&
                   sampling.max_objects <= kMaxSceneObjects,
               "objects per scene must satisfy 1 <= min (" << sampling.min_objects << ") <= max ("
                                                            << sampling.max_objects << ") <= " << kMaxSceneObjects);
  MOELAB_CHECK(index >= 0, "scene index must be >= 0, got " << index);
  for (int k = 0; k < kSceneClasses; ++k)
    MOELAB_CHECK(!items.items[k].empty(), "scene items: no image of class " << k << " (" << class_nouns()[k] << ")");
  std::vector<std::pair<int, int>> allowed, held = heldout.pairs();
  for (int c = 0; c < kSceneColours; ++c)
    for (int k = 0; k < kSceneClasses; ++k)
      if (!heldout.contains(c, k) || split == SceneSplit::heldout) allowed.emplace_back(c, k);
  MOELAB_CHECK(split != SceneSplit::heldout || !held.empty(), "held-out scenes need at least one held-out pair");

  const uint64_t key = hash_stream_key(seed, std::string("scenes/") + split_name(split));
  RngStream rng = RngStream::from_state(key, static_cast<uint64_t>(index) * kSceneDraws);
  const int span = sampling.max_objects - sampling.min_objects + 1;
  const int n = sampling.min_objects + static_cast<int>(rng.below(span));
  std::array<int, kSceneCells> cells;
  std::iota(cells.begin(), cells.end(), 0);
  for (int i = 0; i < n; ++i) std::swap(cells[i], cells[i + rng.below(kSceneCells - i)]);

  Scene scene;
  for (int i = 0; i < n; ++i) {
    SceneObject o;
    o.cell = cells[i];
    o.size = rng.uniform() < sampling.small_prob ? ObjectSize::small : ObjectSize::large;
    // A held-out scene's first object carries a held-out pair; the others may carry any pair.
    const auto& pool = (split == SceneSplit::heldout && i == 0) ? held : allowed;
    auto [colour, cls] = pool[rng.below(pool.size())];
    const bool repeat = rng.uniform() < sampling.duplicate_prob;
    if (i == 1 && repeat) {
      colour = scene.objects[0].colour;
      cls = scene.objects[0].cls;
    }
    o.colour = colour;
    o.cls = cls;
    o.item = items.items[cls][rng.below(items.items[cls].size())];
    scene.objects.push_back(o);
  }
  MOELAB_CHECK(rng.counter() - static_cast<uint64_t>(index) * kSceneDraws <= kSceneDraws,
               "scene generation took more than its " << kSceneDraws << " reserved draws");
  return scene;
}

PixelRect object_rect(int canvas, int cell, ObjectSize size) {
  MOELAB_CHECK(canvas >= 24, "scene canvas must be at least 24 pixels, got " << canvas);
  MOELAB_CHECK(cell >= 0 && cell < kSceneCells, "cell " << cell << " outside [0, " << kSceneCells << ")");
  const int cell_px = canvas / 3, margin = (canvas - 3 * cell_px) / 2;
  const int side = size == ObjectSize::large ? cell_px : static_cast<int>(std::lround(cell_px * 0.6));
  PixelRect r;
  r.w = r.h = side;
  r.x = margin + cell_col(cell) * cell_px + (cell_px - side) / 2;
  r.y = margin + cell_row(cell) * cell_px + (cell_px - side) / 2;
  return r;
}

// Area (box-filter) resampling of a (h, w) grey image to (out_h, out_w) in integer arithmetic, so the
// bytes are the same on every machine and OpenCV build. Source pixel j spans [j * out, (j + 1) * out) and
// output pixel i spans [i * in, (i + 1) * in) on a common axis; weights are the overlaps.
std::vector<uint8_t> area_resize(const uint8_t* src, int h, int w, int out_h, int out_w) {
  MOELAB_CHECK(h > 0 && w > 0 && out_h > 0 && out_w > 0,
               "area_resize: sizes must be positive (" << h << "x" << w << " -> " << out_h << "x" << out_w << ")");
  // The source pixels under output pixel i, with their overlaps: j in [i*in/out, ((i+1)*in - 1)/out].
  auto weight = [](int i, int j, int in, int out) {
    return std::min(int64_t{i + 1} * in, int64_t{j + 1} * out) - std::max(int64_t{i} * in, int64_t{j} * out);
  };
  const int64_t total = int64_t{h} * w;  // the weights of one output pixel sum to h * w
  std::vector<uint8_t> out(static_cast<size_t>(out_h) * out_w);
  for (int y = 0; y < out_h; ++y) {
    const int y0 = static_cast<int>(int64_t{y} * h / out_h), y1 = static_cast<int>((int64_t{y + 1} * h - 1) / out_h);
    for (int x = 0; x < out_w; ++x) {
      const int x0 = static_cast<int>(int64_t{x} * w / out_w), x1 = static_cast<int>((int64_t{x + 1} * w - 1) / out_w);
      int64_t sum = 0;
      for (int sy = y0; sy <= y1; ++sy) {
        int64_t row = 0;
        for (int sx = x0; sx <= x1; ++sx) row += weight(x, sx, w, out_w) * src[sy * w + sx];
        sum += weight(y, sy, h, out_h) * row;
      }
      out[y * out_w + x] = static_cast<uint8_t>((sum + total / 2) / total);
    }
  }
  return out;
}

namespace {

// Resizes item `item` into `rect` of the (canvas, canvas, 3) image and tints it: intensity v becomes
// rgb * min(1, v / (0.6 max)) with max the item's brightest pixel, so dark items still show their colour
// (an orange coat is not brown) while faint backgrounds stay faint.
void paste_item(std::vector<uint8_t>& out, int canvas, const ImageSet& items, int64_t item, const PixelRect& rect,
                const std::array<uint8_t, 3>& rgb) {
  MOELAB_CHECK(items.channels == 1, "scene items must be grey (1 channel), got " << items.channels);
  MOELAB_CHECK(item >= 0 && item < items.count, "scene item " << item << " outside a set of " << items.count);
  const uint8_t* src = items.image(item);
  const int max_value = *std::max_element(src, src + items.image_bytes());
  std::array<std::array<uint8_t, 3>, 256> lut{};
  for (int v = 0; v < 256 && max_value > 0; ++v)
    for (int ch = 0; ch < 3; ++ch)
      lut[v][ch] = static_cast<uint8_t>(std::lround(rgb[ch] * std::min(1.0, v / (kFullTint * max_value))));
  const std::vector<uint8_t> resized =
      area_resize(src, static_cast<int>(items.height), static_cast<int>(items.width), rect.h, rect.w);
  for (int y = 0; y < rect.h; ++y)
    for (int x = 0; x < rect.w; ++x) {
      const uint8_t* tint = lut[resized[y * rect.w + x]].data();
      uint8_t* px = out.data() + (static_cast<size_t>(rect.y + y) * canvas + rect.x + x) * 3;
      for (int ch = 0; ch < 3; ++ch) px[ch] = tint[ch];
    }
}

}  // namespace

std::vector<uint8_t> render_scene(const Scene& scene, const ImageSet& items, int canvas) {
  std::vector<uint8_t> out(static_cast<size_t>(canvas) * canvas * 3, 0);
  for (const SceneObject& o : scene.objects)
    paste_item(out, canvas, items, o.item, object_rect(canvas, o.cell, o.size), colour_rgb(o.colour));
  return out;
}

std::vector<uint8_t> render_probe(const ImageSet& items, int64_t item, int canvas, ObjectSize size) {
  std::vector<uint8_t> out(static_cast<size_t>(canvas) * canvas * 3, 0);
  paste_item(out, canvas, items, item, object_rect(canvas, 4, size), {255, 255, 255});
  return out;
}

}  // namespace moelab::vision
