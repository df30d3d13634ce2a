// Compositional scenes: deterministic generation and rendering, the caption grammar and its parser, the
// truth of meanings on scenes, hard negatives, the held-out (colour, class) split, zero-shot probes, batches
// and the preview sheet. Most tests use small synthetic item sets; the preview also uses Fashion-MNIST.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/util/check.h"
#include "vision/data/captions.h"
#include "vision/data/fashion_mnist.h"
#include "vision/data/hard_negatives.h"
#include "vision/data/scene.h"
#include "vision/data/scene_dataset.h"
#include "vision/data/scene_preview.h"

namespace fs = std::filesystem;
using namespace moelab;
using namespace moelab::vision;

namespace {

// `per_class` 28x28 items per class; item i has a distinct pixel pattern, or the constant `fill` if > 0.
ImageSet synthetic_items(int per_class, int salt, int fill = 0) {
  ImageSet set;
  set.count = static_cast<int64_t>(per_class) * kSceneClasses;
  set.channels = 1;
  set.height = set.width = 28;
  set.num_classes = kSceneClasses;
  set.pixels.resize(set.count * 28 * 28);
  for (int64_t i = 0; i < set.count; ++i) {
    set.labels.push_back(static_cast<int32_t>(i % kSceneClasses));
    for (int p = 0; p < 28 * 28; ++p)
      set.pixels[i * 784 + p] = fill > 0 ? fill : static_cast<uint8_t>(40 + (p * 7 + i * 13 + salt * 31) % 215);
  }
  return set;
}

SceneDataOptions small_options(uint64_t seed = 7) {
  SceneDataOptions o;
  o.seed = seed;
  o.train_size = 20000;
  o.test_size = 2000;
  o.heldout_size = 2000;
  return o;
}

SceneDataset synthetic_dataset(uint64_t seed = 7) {
  return SceneDataset(small_options(seed), synthetic_items(30, 1), synthetic_items(12, 2));
}

bool have_fashion_mnist() {
  return fs::exists(default_fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz") &&
         fs::exists(default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz");
}

SceneObject object(int cls, int colour, int cell, ObjectSize size = ObjectSize::large) {
  SceneObject o;
  o.cls = cls;
  o.colour = colour;
  o.cell = cell;
  o.size = size;
  return o;
}

int count_occurrences(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1)) ++n;
  return n;
}

// An independent reading of a meaning on a scene: assign objects to mentions one by one (groups take
// `count` objects), then check every relation with row/column arithmetic.
bool oracle_true(const Meaning& m, const Scene& s) {
  const int n = static_cast<int>(s.objects.size());
  if (m.total >= 0 && m.total != n) return false;
  std::vector<std::vector<int>> assigned(m.mentions.size());
  std::vector<bool> used(n, false);
  std::function<bool(size_t)> assign = [&](size_t k) -> bool {
    if (k == m.mentions.size()) {
      if (std::count(used.begin(), used.end(), true) != n) return false;
      for (size_t i = 0; i < m.mentions.size(); ++i) {
        const Mention& x = m.mentions[i];
        if (x.anchor < 0) continue;
        const SceneObject &o = s.objects[assigned[i][0]], &a = s.objects[assigned[x.anchor][0]];
        const int dcol = o.cell % 3 - a.cell % 3, drow = o.cell / 3 - a.cell / 3;
        if ((dcol > 0) - (dcol < 0) != x.dx || (drow > 0) - (drow < 0) != x.dy) return false;
      }
      return true;
    }
    const Mention& x = m.mentions[k];
    if (static_cast<int>(assigned[k].size()) == x.count) return assign(k + 1);
    for (int j = 0; j < n; ++j) {
      const SceneObject& o = s.objects[j];
      if (used[j] || o.cls != x.cls || (x.colour >= 0 && o.colour != x.colour) ||
          (x.size >= 0 && static_cast<int>(o.size) != x.size) || (x.cell >= 0 && o.cell != x.cell))
        continue;
      used[j] = true;
      assigned[k].push_back(j);
      if (assign(k)) return true;
      assigned[k].pop_back();
      used[j] = false;
    }
    return false;
  };
  return assign(0);
}

// Two mentions said alike in a caption without locations ("a red shirt and a red shirt").
bool alike_unlocated_mentions(const Meaning& m) {
  std::set<std::tuple<int, int, int>> seen;
  for (const Mention& x : m.mentions) {
    if (x.cell >= 0 || x.anchor >= 0) return false;
    if (!seen.insert({x.cls, x.colour, x.size}).second) return true;
  }
  return false;
}

}  // namespace

TEST(Scenes, GenerationAndRenderingAreDeterministicPerIndex) {
  SceneDataset a = synthetic_dataset(), b = synthetic_dataset();
  // b produces the indices backwards: each scene depends only on (seed, split, index).
  std::vector<Scene> backwards(200);
  for (int i = 199; i >= 0; --i) backwards[i] = b.scene(SceneSplit::train, i);
  std::set<std::vector<uint8_t>> distinct_images;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(a.scene(SceneSplit::train, i), backwards[i]) << "scene " << i;
    std::vector<uint8_t> img = a.render(SceneSplit::train, i);
    ASSERT_EQ(img, b.render(SceneSplit::train, i)) << "scene " << i;
    ASSERT_EQ(img.size(), 64u * 64u * 3u);
    distinct_images.insert(img);
    EXPECT_EQ(a.caption(SceneSplit::train, i, 3).text, b.caption(SceneSplit::train, i, 3).text);
  }
  EXPECT_EQ(distinct_images.size(), 200u) << "different indices gave the same image";
  // Another seed or split gives other scenes.
  SceneDataset c = synthetic_dataset(8);
  int same = 0;
  for (int i = 0; i < 200; ++i) {
    same += c.scene(SceneSplit::train, i) == a.scene(SceneSplit::train, i);
    same += a.scene(SceneSplit::test, i) == a.scene(SceneSplit::train, i);
  }
  EXPECT_EQ(same, 0);
}

TEST(Scenes, RenderingPlacesTintedItemsInTheirSquares) {
  // Constant items (value 200) resize to 200 exactly, their own maximum: every pixel is the full tint.
  ImageSet items = synthetic_items(1, 0, 200);
  Scene s;
  s.objects = {object(0, 0, 0, ObjectSize::large), object(3, 5, 4, ObjectSize::small),
               object(8, 7, 8, ObjectSize::large)};
  s.objects[1].item = 3;
  s.objects[2].item = 8;
  const int canvas = 64;
  std::vector<uint8_t> img = render_scene(s, items, canvas);
  EXPECT_EQ(object_rect(canvas, 0, ObjectSize::large).w, 21);
  EXPECT_EQ(object_rect(canvas, 4, ObjectSize::small).w, 13);
  EXPECT_EQ(object_rect(canvas, 4, ObjectSize::small).x, 21 + 4);
  int painted = 0;
  for (int y = 0; y < canvas; ++y)
    for (int x = 0; x < canvas; ++x) {
      std::array<int, 3> want = {0, 0, 0};
      for (const SceneObject& o : s.objects) {
        PixelRect r = object_rect(canvas, o.cell, o.size);
        if (x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h) {
          auto rgb = colour_rgb(o.colour);
          for (int ch = 0; ch < 3; ++ch) want[ch] = rgb[ch];
          ++painted;
        }
      }
      for (int ch = 0; ch < 3; ++ch) ASSERT_EQ(img[(y * canvas + x) * 3 + ch], want[ch]) << x << "," << y << "," << ch;
    }
  EXPECT_EQ(painted, 21 * 21 * 2 + 13 * 13);
}

TEST(Scenes, RenderingScalesIntensityByTheItemsMaximum) {
  // At canvas 84 a large square is 28 pixels: the item is copied without resampling.
  ImageSet items = synthetic_items(1, 0, 200);
  for (int p = 0; p < 784; ++p) items.pixels[4 * 784 + p] = static_cast<uint8_t>(p < 392 ? 200 : (p % 28 < 14 ? 50 : 0));
  Scene s;
  s.objects = {object(4, 1, 5, ObjectSize::large)};
  s.objects[0].item = 4;
  std::vector<uint8_t> img = render_scene(s, items, 84);
  const PixelRect r = object_rect(84, 5, ObjectSize::large);
  ASSERT_EQ(r.w, 28);
  const auto rgb = colour_rgb(1);  // orange (255, 140, 0)
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const int v = items.pixels[4 * 784 + y * 28 + x];
      for (int ch = 0; ch < 3; ++ch) {
        const int want = static_cast<int>(std::lround(rgb[ch] * std::min(1.0, v / 120.0)));
        ASSERT_EQ(img[((r.y + y) * 84 + r.x + x) * 3 + ch], want) << x << "," << y;
      }
    }
  EXPECT_EQ(img[((r.y + 20) * 84 + r.x + 3) * 3], 106);  // 255 * 50 / (0.6 * 200), rounded
}

TEST(Scenes, AreaResizeIsTheExactBoxFilterAndAgreesWithOpenCV) {
  std::vector<uint8_t> img(28 * 28);
  for (int p = 0; p < 28 * 28; ++p) img[p] = static_cast<uint8_t>((p * 37 + (p / 28) * 11) % 256);
  // Halving averages 2x2 blocks exactly (rounded half up).
  std::vector<uint8_t> half = area_resize(img.data(), 28, 28, 14, 14);
  for (int y = 0; y < 14; ++y)
    for (int x = 0; x < 14; ++x) {
      const int sum = img[2 * y * 28 + 2 * x] + img[2 * y * 28 + 2 * x + 1] + img[(2 * y + 1) * 28 + 2 * x] +
                      img[(2 * y + 1) * 28 + 2 * x + 1];
      ASSERT_EQ(half[y * 14 + x], (sum + 2) / 4) << x << "," << y;
    }
  EXPECT_EQ(area_resize(img.data(), 28, 28, 28, 28), img);
  std::vector<uint8_t> twice = area_resize(img.data(), 28, 28, 56, 56);  // upscaling repeats pixels
  for (int y = 0; y < 56; ++y)
    for (int x = 0; x < 56; ++x) ASSERT_EQ(twice[y * 56 + x], img[(y / 2) * 28 + x / 2]) << x << "," << y;
  // The scene sizes (21 and 13 pixels) match OpenCV's INTER_AREA within one level of rounding.
  cv::Mat src(28, 28, CV_8UC1, img.data());
  for (int side : {21, 13, 17}) {
    std::vector<uint8_t> ours = area_resize(img.data(), 28, 28, side, side);
    cv::Mat theirs;
    cv::resize(src, theirs, cv::Size(side, side), 0, 0, cv::INTER_AREA);
    int worst = 0;
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) worst = std::max(worst, std::abs(ours[y * side + x] - theirs.at<uint8_t>(y, x)));
    EXPECT_LE(worst, 1) << side;
  }
}

TEST(Scenes, SampleHasTheStatedStructure) {
  SceneDataset data = synthetic_dataset();
  std::map<int, int> object_counts;
  std::set<std::pair<int, int>> pairs_seen;
  int small = 0, large = 0, repeated_pair = 0;
  for (int64_t i = 0; i < 5000; ++i) {
    Scene s = data.scene(SceneSplit::train, i);
    ++object_counts[static_cast<int>(s.objects.size())];
    std::set<int> cells;
    for (const SceneObject& o : s.objects) {
      cells.insert(o.cell);
      ASSERT_EQ(data.items(SceneSplit::train).labels[o.item], o.cls) << "scene " << i << ": item of another class";
      (o.size == ObjectSize::small ? small : large)++;
      pairs_seen.insert({o.colour, o.cls});
    }
    ASSERT_EQ(cells.size(), s.objects.size()) << "scene " << i << " has two objects in one cell";
    if (s.objects.size() >= 2)
      repeated_pair += s.objects[0].colour == s.objects[1].colour && s.objects[0].cls == s.objects[1].cls;
  }
  for (int n = 1; n <= 3; ++n) EXPECT_GT(object_counts[n], 1400) << n << " objects";
  EXPECT_GT(small, 4000);
  EXPECT_GT(large, 4000);
  EXPECT_EQ(pairs_seen.size(), 80u - 8u) << "every non-held-out (colour, class) pair occurs in training";
  EXPECT_GT(repeated_pair, 500) << "scenes with two equal (colour, class) objects feed the counted captions";
}

TEST(Scenes, HeldoutPairsNeverOccurInTrainingOrTestScenes) {
  SceneDataset data = synthetic_dataset();
  const HeldoutPairs& held = data.heldout_pairs();
  ASSERT_EQ(held.count(), 8);
  std::set<int> colours, classes;
  for (auto [c, k] : held.pairs()) {
    colours.insert(c);
    classes.insert(k);
  }
  EXPECT_EQ(colours.size(), 8u);
  EXPECT_EQ(classes.size(), 8u) << "one class per colour, each class held out at most once";
  for (SceneSplit split : {SceneSplit::train, SceneSplit::test})
    for (int64_t i = 0; i < data.size(split); ++i)
      for (const SceneObject& o : data.scene(split, i).objects)
        ASSERT_FALSE(held.contains(o.colour, o.cls)) << split_name(split) << " scene " << i;
  std::set<std::pair<int, int>> held_seen;
  for (int64_t i = 0; i < data.size(SceneSplit::heldout); ++i) {
    int held_objects = 0;
    for (const SceneObject& o : data.scene(SceneSplit::heldout, i).objects)
      if (held.contains(o.colour, o.cls)) {
        ++held_objects;
        held_seen.insert({o.colour, o.cls});
      }
    ASSERT_GE(held_objects, 1) << "held-out scene " << i;
  }
  EXPECT_EQ(held_seen.size(), 8u);
  // Another seed holds out other pairs; more per colour is possible, and an impossible count is an error.
  EXPECT_NE(HeldoutPairs(8, 1).pairs(), held.pairs());
  EXPECT_EQ(HeldoutPairs(7, 2).count(), 16);
  EXPECT_THROW(HeldoutPairs(7, 4), Error);
}

TEST(Captions, HandMadeSceneGivesTheExpectedSentences) {
  Scene s;
  s.objects = {object(7, 0, 3, ObjectSize::large), object(8, 5, 7, ObjectSize::small)};
  const std::map<CaptionTemplate, std::set<std::string>> expected = {
      {CaptionTemplate::list,
       {"a red sneaker and a blue bag", "a blue bag and a red sneaker", "a large red sneaker and a small blue bag",
        "a small blue bag and a large red sneaker"}},
      {CaptionTemplate::absolute,
       {"a red sneaker on the left and a blue bag at the bottom", "a blue bag at the bottom and a red sneaker on the left",
        "a large red sneaker on the left and a small blue bag at the bottom",
        "a small blue bag at the bottom and a large red sneaker on the left"}},
      {CaptionTemplate::relational,
       {"a red sneaker on the left and a blue bag below and to the right of it",
        "a blue bag at the bottom and a red sneaker above and to the left of it",
        "a large red sneaker on the left and a small blue bag below and to the right of it",
        "a small blue bag at the bottom and a large red sneaker above and to the left of it"}},
      {CaptionTemplate::counted, {"two items: a red sneaker and a blue bag", "two items: a blue bag and a red sneaker"}}};
  for (const auto& [templ, sentences] : expected) {
    std::set<std::string> seen;
    for (uint64_t k = 0; k < 64; ++k) {
      RngStream rng(k, "caption");
      Caption c = make_caption(s, templ, rng);
      EXPECT_TRUE(sentences.count(c.text)) << template_name(templ) << ": unexpected '" << c.text << "'";
      seen.insert(c.text);
    }
    EXPECT_EQ(seen, sentences) << template_name(templ) << ": every variant is drawn";
  }
  // Equal (colour, class) objects are counted; "an" before vowels.
  Scene t;
  t.objects = {object(6, 0, 0), object(9, 1, 8), object(6, 0, 5)};
  RngStream rng(1, "c");
  Caption counted = make_caption(t, CaptionTemplate::counted, rng);
  EXPECT_TRUE(counted.text == "three items: two red shirts and an orange ankle boot" ||
              counted.text == "three items: an orange ankle boot and two red shirts")
      << counted.text;
  std::set<std::string> lists;
  for (uint64_t k = 0; k < 64; ++k) {
    RngStream r(k, "list");
    lists.insert(make_caption(t, CaptionTemplate::list, r).text);
  }
  EXPECT_EQ(lists, (std::set<std::string>{"two red shirts and an orange ankle boot",
                                          "an orange ankle boot and two red shirts",
                                          "two large red shirts and a large orange ankle boot",
                                          "a large orange ankle boot and two large red shirts"}));
  t.objects[2].size = ObjectSize::small;  // sizes that differ keep the shirts apart when sizes are said
  RngStream r2(5, "list");
  bool split_seen = false;
  for (int k = 0; k < 16; ++k) {
    const std::string text = make_caption(t, CaptionTemplate::list, r2).text;
    split_seen |= text.find("a small red shirt") != std::string::npos && text.find("a large red shirt") != std::string::npos;
  }
  EXPECT_TRUE(split_seen);
  EXPECT_EQ(relation_phrase(0, -1), "above it");
  EXPECT_EQ(relation_phrase(-1, 0), "to the left of it");
  EXPECT_EQ(cell_phrase(4), "in the centre");
}

TEST(Captions, EveryCaptionNamesEveryObjectParsesBackAndIsTrue) {
  SceneDataset data = synthetic_dataset();
  std::map<CaptionTemplate, int> templates;
  for (int64_t i = 0; i < 1500; ++i) {
    Scene s = data.scene(SceneSplit::test, i);
    std::set<int> templates_of_scene;
    for (int64_t v = 0; v < 8; ++v) {
      Caption c = data.caption(SceneSplit::test, i, v);
      ++templates[c.templ];
      templates_of_scene.insert(static_cast<int>(c.templ));
      ASSERT_EQ(parse_caption(c.text), c.meaning) << c.text;
      ASSERT_TRUE(describes(c.meaning, s)) << c.text;
      ASSERT_TRUE(oracle_true(c.meaning, s)) << c.text;
      // Every object appears with its colour and noun (plural in a counted group).
      std::multiset<std::pair<int, int>> said, present;
      for (const Mention& m : c.meaning.mentions)
        for (int k = 0; k < m.count; ++k) said.insert({m.colour, m.cls});
      for (const SceneObject& o : s.objects) {
        present.insert({o.colour, o.cls});
        const std::string name = colour_names()[o.colour] + " ";
        ASSERT_TRUE(c.text.find(name + class_nouns()[o.cls]) != std::string::npos ||
                    c.text.find(name + class_plurals()[o.cls]) != std::string::npos)
            << c.text;
      }
      ASSERT_EQ(said, present) << c.text;
      ASSERT_FALSE(alike_unlocated_mentions(c.meaning)) << c.text;
    }
    if (i < 200) {
      EXPECT_GE(templates_of_scene.size(), 2u) << "scene " << i << ": one template for 8 variants";
    }
  }
  for (int t = 0; t < kCaptionTemplates; ++t) EXPECT_GT(templates[static_cast<CaptionTemplate>(t)], 2400);
}

TEST(Captions, PositionAndRelationWordsAgreeWithTheGeometry) {
  SceneDataset data = synthetic_dataset();
  int relations = 0, locations = 0;
  for (int64_t i = 0; i < 3000; ++i) {
    Scene s = data.scene(SceneSplit::train, i);
    // Objects are identified by (colour, class) below; skip scenes where that is ambiguous.
    std::set<std::pair<int, int>> keys;
    for (const SceneObject& o : s.objects) keys.insert({o.colour, o.cls});
    if (keys.size() != s.objects.size()) continue;
    for (CaptionTemplate templ : {CaptionTemplate::absolute, CaptionTemplate::relational}) {
      RngStream rng(i, "geometry");
      Caption c = make_caption(s, templ, rng);
      // Cut the text into the mentions' phrases at the next mention's "colour noun".
      const std::vector<Mention>& ms = c.meaning.mentions;
      auto find = [&](const Mention& m) -> const SceneObject& {
        for (const SceneObject& o : s.objects)
          if (o.colour == m.colour && o.cls == m.cls) return o;
        throw std::runtime_error("mention without object");
      };
      std::string rest = c.text;
      for (size_t k = 0; k < ms.size(); ++k) {
        // The phrase of mention k runs to the start of mention k+1's text.
        size_t end = rest.size();
        if (k + 1 < ms.size()) {
          const std::string next = colour_names()[ms[k + 1].colour] + " " + class_nouns()[ms[k + 1].cls];
          end = rest.find(next, rest.find(class_nouns()[ms[k].cls]) + 1);
        }
        const std::string phrase = rest.substr(0, end);
        rest = rest.substr(end);
        const SceneObject& o = find(ms[k]);
        const int row = o.cell / 3, col = o.cell % 3;
        if (ms[k].cell >= 0) {
          ++locations;
          ASSERT_EQ(phrase.find("top") != std::string::npos, row == 0) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("bottom") != std::string::npos, row == 2) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("left") != std::string::npos, col == 0) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("right") != std::string::npos, col == 2) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("centre") != std::string::npos, o.cell == 4) << c.text << " | " << phrase;
        }
        if (ms[k].anchor >= 0) {
          ++relations;
          const SceneObject& a = find(ms[ms[k].anchor]);
          const int arow = a.cell / 3, acol = a.cell % 3;
          ASSERT_EQ(phrase.find("above") != std::string::npos, row < arow) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("below") != std::string::npos, row > arow) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("left of it") != std::string::npos, col < acol) << c.text << " | " << phrase;
          ASSERT_EQ(phrase.find("right of it") != std::string::npos, col > acol) << c.text << " | " << phrase;
        }
      }
    }
  }
  EXPECT_GT(relations, 2000);
  EXPECT_GT(locations, 4000);
}

TEST(Captions, MeaningsAreCheckedAgainstScenes) {
  Scene s;  // two red shirts (top left, centre) and a small blue bag at the bottom right
  s.objects = {object(6, 0, 0), object(6, 0, 4), object(8, 5, 8, ObjectSize::small)};
  auto says = [&](const std::string& text) {
    const Meaning m = parse_caption(text);
    EXPECT_EQ(describes(m, s), oracle_true(m, s)) << text;
    return describes(m, s);
  };
  EXPECT_TRUE(says("three items: two red shirts and a blue bag"));
  EXPECT_TRUE(says("a blue bag, two red shirts"));
  EXPECT_TRUE(says("a red shirt, a small blue bag and a red shirt"));
  EXPECT_TRUE(says("a red shirt at the top left, a red shirt below and to the right of it and a small bag below and "
                   "to the right of it"));
  EXPECT_FALSE(says("two red shirts")) << "captions are exhaustive";
  EXPECT_FALSE(says("two items: two red shirts and a blue bag"));
  EXPECT_FALSE(says("three red shirts"));
  EXPECT_FALSE(says("two red shirts and a large blue bag"));
  EXPECT_FALSE(says("two blue shirts and a red bag"));
  EXPECT_FALSE(says("a red shirt at the top left, a red shirt below it and a blue bag"))
      << "'below it' means the same column";
  EXPECT_FALSE(says("a red shirt at the top, a red shirt in the centre and a blue bag"));
  // Same meaning up to mention order, including a relation read from the other side.
  EXPECT_TRUE(same_meaning(parse_caption("a red shirt and a blue bag"), parse_caption("a blue bag and a red shirt")));
  EXPECT_FALSE(same_meaning(parse_caption("a red shirt on the left and a blue bag below it"),
                            parse_caption("a blue bag and a red shirt above it")))
      << "the first also places the shirt";
  EXPECT_TRUE(same_meaning(parse_caption("a red shirt, a blue bag below it"), parse_caption("a blue bag, a red shirt above it")));
  EXPECT_FALSE(same_meaning(parse_caption("a red shirt, a blue bag below it"), parse_caption("a blue bag, a red shirt below it")));
}

TEST(Captions, ParserRejectsWhatTheGrammarCannotSay) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_caption(text);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("a red hat").find("word 3 ('hat')"), std::string::npos) << error_of("a red hat");
  EXPECT_NE(error_of("a red shirt below it").find("nothing to refer to"), std::string::npos);
  EXPECT_NE(error_of("two red shirt").find("agree"), std::string::npos);
  EXPECT_NE(error_of("a red shirt or a bag").find("word 4 ('or')"), std::string::npos) << error_of("a red shirt or a bag");
  EXPECT_NE(error_of("two shirts on the left").find("cannot have a location"), std::string::npos);
  EXPECT_NE(error_of("two items a shirt").find("expected ':'"), std::string::npos);
  EXPECT_NE(error_of("a red shirt and").find("the end"), std::string::npos);
  Meaning bad;
  bad.mentions = {Mention{}};
  bad.mentions[0].count = 2;
  bad.mentions[0].cell = 3;
  EXPECT_THROW(caption_text(bad), Error);
}

TEST(HardNegatives, EveryNegativeChangesTheMeaningAndIsFalseOfTheScene) {
  SceneDataset data = synthetic_dataset();
  std::map<NegativeKind, int> made;
  const int scenes = 2000;
  for (int64_t i = 0; i < scenes; ++i) {
    Scene s = data.scene(SceneSplit::test, i);
    for (int k = 0; k < kNegativeKinds; ++k) {
      const auto kind = static_cast<NegativeKind>(k);
      std::optional<HardNegativePair> pair = data.hard_negative(SceneSplit::test, i, kind);
      if (!pair) continue;
      ++made[kind];
      const Meaning &pos = pair->positive.meaning, &neg = pair->negative.meaning;
      ASSERT_TRUE(describes(pos, s)) << pair->positive.text;
      ASSERT_FALSE(describes(neg, s)) << negative_kind_name(kind) << ": '" << pair->negative.text << "' is true of the scene";
      ASSERT_FALSE(oracle_true(neg, s)) << negative_kind_name(kind) << ": '" << pair->negative.text << "' is true";
      ASSERT_FALSE(same_meaning(pos, neg)) << pair->positive.text << " vs " << pair->negative.text;
      ASSERT_NE(pair->positive.text, pair->negative.text);
      ASSERT_EQ(parse_caption(pair->negative.text), neg) << pair->negative.text;
      ASSERT_EQ(pos.mentions.size(), neg.mentions.size());
      ASSERT_FALSE(alike_unlocated_mentions(neg)) << "worded unlike a true caption: " << pair->negative.text;
      for (const Mention& x : neg.mentions)
        ASSERT_FALSE(data.heldout_pairs().contains(x.colour, x.cls)) << "in-distribution negative names a held-out pair: "
                                                                     << pair->negative.text;
      // The edit is of the stated kind: count the mentions whose fields changed.
      int colour_changes = 0, cell_changes = 0, relation_changes = 0, class_changes = 0, count_changes = 0;
      std::multiset<int> pos_colours, neg_colours;
      for (size_t m = 0; m < pos.mentions.size(); ++m) {
        const Mention &a = pos.mentions[m], &b = neg.mentions[m];
        colour_changes += a.colour != b.colour;
        cell_changes += a.cell != b.cell;
        relation_changes += a.dx != b.dx || a.dy != b.dy;
        class_changes += a.cls != b.cls;
        count_changes += a.count != b.count;
        pos_colours.insert(a.colour);
        neg_colours.insert(b.colour);
        ASSERT_EQ(a.size, b.size);
        ASSERT_EQ(a.anchor, b.anchor);
      }
      const int others = cell_changes + relation_changes + class_changes + count_changes;
      switch (kind) {
        case NegativeKind::colour_swap:
          ASSERT_EQ(colour_changes, 2);
          ASSERT_EQ(others, 0);
          ASSERT_EQ(pos_colours, neg_colours);
          break;
        case NegativeKind::position_swap:
          ASSERT_TRUE((cell_changes == 2 && relation_changes == 0) || (cell_changes == 0 && relation_changes == 1))
              << pair->positive.text << " vs " << pair->negative.text;
          ASSERT_EQ(colour_changes + class_changes + count_changes, 0);
          break;
        case NegativeKind::object_replace:
          ASSERT_EQ(class_changes, 1);
          ASSERT_EQ(colour_changes + cell_changes + relation_changes + count_changes, 0);
          break;
        case NegativeKind::count_change:
          ASSERT_EQ(count_changes, 1);
          ASSERT_EQ(colour_changes + cell_changes + relation_changes + class_changes, 0);
          break;
      }
    }
  }
  // Colour and position swaps need two objects (two thirds of the scenes) and colour swaps two colours whose
  // swap names no held-out pair; replacements always exist.
  for (auto [kind, n] : made) std::printf("%s: %d of %d test scenes\n", negative_kind_name(kind), n, scenes);
  EXPECT_EQ(made[NegativeKind::object_replace], scenes);
  EXPECT_GT(made[NegativeKind::colour_swap], scenes * 2 / 5);
  EXPECT_GT(made[NegativeKind::position_swap], scenes / 2);
  EXPECT_GT(made[NegativeKind::count_change], scenes / 2);
}

// NegCLIP training negatives: false of the train scene, edits of the shown caption where it admits the kind,
// one per kind, never a held-out pair, deterministic per (scene, variant), and as many as asked where possible.
TEST(HardNegatives, TrainingNegativesAreFalseDistinctAndNeverHeldOut) {
  SceneDataset data = synthetic_dataset();
  const int64_t scenes = 400;
  int64_t total = 0, from_the_shown_caption = 0, differ_by_variant = 0;
  for (int64_t i = 0; i < scenes; ++i) {
    Scene s = data.scene(SceneSplit::train, i);
    for (int64_t variant = 0; variant < 3; ++variant) {
      const Caption pos = data.caption(SceneSplit::train, i, variant);
      const std::vector<Caption> negs = data.training_negatives(i, variant, pos, 4);
      ASSERT_GE(negs.size(), 1u);  // an object replacement always exists
      ASSERT_LE(negs.size(), 4u);
      std::set<std::string> texts;
      for (const Caption& n : negs) {
        ASSERT_FALSE(describes(n.meaning, s)) << "'" << n.text << "' is true of the scene";
        ASSERT_FALSE(oracle_true(n.meaning, s)) << "'" << n.text << "' is true";
        ASSERT_EQ(parse_caption(n.text), n.meaning) << n.text;
        for (const Mention& x : n.meaning.mentions)
          ASSERT_FALSE(data.heldout_pairs().contains(x.colour, x.cls)) << "names a held-out pair: " << n.text;
        texts.insert(n.text);
        from_the_shown_caption += n.templ == pos.templ;
      }
      ASSERT_EQ(texts.size(), negs.size()) << "one negative per kind, all different";
      total += static_cast<int64_t>(negs.size());
      // deterministic, and a prefix of the full list when fewer are asked for
      const std::vector<Caption> again = data.training_negatives(i, variant, pos, 4);
      ASSERT_EQ(again.size(), negs.size());
      for (size_t k = 0; k < negs.size(); ++k) ASSERT_EQ(again[k].text, negs[k].text);
      const std::vector<Caption> two = data.training_negatives(i, variant, pos, 2);
      ASSERT_EQ(two.size(), std::min<size_t>(2, negs.size()));
      for (size_t k = 0; k < two.size(); ++k) ASSERT_EQ(two[k].text, negs[k].text);
      ASSERT_TRUE(data.training_negatives(i, variant, pos, 0).empty());
      if (variant == 1) differ_by_variant += data.training_negatives(i, 0, data.caption(SceneSplit::train, i, 0), 1)[0].text !=
                                             data.training_negatives(i, 1, pos, 1)[0].text;
    }
  }
  std::printf("%lld training negatives for %lld captions; %lld in the shown template; first differs by variant in %lld scenes\n",
              static_cast<long long>(total), static_cast<long long>(3 * scenes), static_cast<long long>(from_the_shown_caption),
              static_cast<long long>(differ_by_variant));
  EXPECT_GT(total, 3 * scenes * 2);           // most scenes admit several kinds
  EXPECT_GT(from_the_shown_caption, total / 2);  // mostly edits of the caption the model sees
  EXPECT_GT(differ_by_variant, scenes / 2);   // each epoch shows other negatives
  EXPECT_THROW(data.training_negatives(0, 0, data.caption(SceneSplit::train, 0, 0), 5), Error);
  EXPECT_THROW(data.training_negatives(data.size(SceneSplit::train), 0, data.caption(SceneSplit::train, 0, 0), 1), Error);
}

TEST(HardNegatives, SwapsOfIndistinguishableObjectsAreNotNegatives) {
  Scene s;  // two red shirts: swapping their positions says the same thing
  s.objects = {object(6, 0, 0), object(6, 0, 2)};
  Caption c;
  c.meaning = parse_caption("a red shirt at the top left and a red shirt at the top right");
  c.text = caption_text(c.meaning);
  RngStream rng(3, "neg");
  EXPECT_FALSE(make_negative(c, s, NegativeKind::position_swap, rng).has_value());
  EXPECT_FALSE(make_negative(c, s, NegativeKind::colour_swap, rng).has_value());
  // With a relation the reversed relation is a real negative.
  c.meaning = parse_caption("a red shirt at the top left and a red shirt to the right of it");
  auto neg = make_negative(c, s, NegativeKind::position_swap, rng);
  ASSERT_TRUE(neg.has_value());
  EXPECT_EQ(neg->text, "a red shirt at the top left and a red shirt to the left of it");
}

TEST(SceneData, BatchesHoldTheRenderedScenesCaptionsAndMetadata) {
  SceneDataset data = synthetic_dataset();
  std::vector<int64_t> idx = {5, 0, 1999};
  SceneBatch b = data.batch(SceneSplit::heldout, idx, 2);
  ASSERT_EQ(b.images.shape(), (Shape{3, 3, 64, 64}));
  const float* px = b.images.data<float>();
  for (size_t k = 0; k < idx.size(); ++k) {
    std::vector<uint8_t> img = data.render(SceneSplit::heldout, idx[k]);
    for (int p = 0; p < 64 * 64; ++p)
      for (int ch = 0; ch < 3; ++ch) ASSERT_FLOAT_EQ(px[(k * 3 + ch) * 4096 + p], img[p * 3 + ch] / 255.f);
    EXPECT_EQ(b.captions[k], data.caption(SceneSplit::heldout, idx[k], 2).text);
    EXPECT_EQ(b.scenes[k], data.scene(SceneSplit::heldout, idx[k]));
  }
  EXPECT_THROW(data.scene(SceneSplit::heldout, 2000), Error);
  EXPECT_THROW(data.scene(SceneSplit::test, -1), Error);
  SceneDataOptions bad = small_options();
  bad.canvas = 16;
  EXPECT_THROW(SceneDataset(bad, synthetic_items(2, 1), synthetic_items(2, 2)), Error);
  ImageSet no_bags = synthetic_items(2, 1);
  for (int32_t& label : no_bags.labels)
    if (label == 8) label = 0;
  try {
    SceneDataset(small_options(), no_bags, synthetic_items(2, 2)).scene(SceneSplit::train, 0);
    ADD_FAILURE() << "no error for an item set without bags";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no image of class 8 (bag)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(data.caption(SceneSplit::test, 0, -1), Error);
  bad = small_options();
  bad.sampling.max_objects = 4;
  EXPECT_THROW(SceneDataset(bad, synthetic_items(2, 1), synthetic_items(2, 2)).scene(SceneSplit::train, 0), Error);
}

TEST(ZeroShot, ProbesAreOneUntintedCentredItemWithClassPrompts) {
  ImageSet items = synthetic_items(3, 0, 200);
  items.pixels[7 * 784] = 0;  // one dark corner pixel, so item 7 differs
  ProbeBatch b = probe_batch(items, {7, 2, 29}, 64);
  ASSERT_EQ(b.images.shape(), (Shape{3, 3, 64, 64}));
  EXPECT_EQ(b.labels.to_vector<int64_t>(), (std::vector<int64_t>{7, 2, 9}));
  const PixelRect r = object_rect(64, 4, ObjectSize::large);
  EXPECT_EQ(r.x, 21);
  const float* px = b.images.data<float>();
  for (int k = 1; k < 3; ++k)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        const bool inside = x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
        for (int ch = 0; ch < 3; ++ch)
          ASSERT_FLOAT_EQ(px[(k * 3 + ch) * 4096 + y * 64 + x], inside ? 1.f : 0.f) << k << " " << x << "," << y;
      }
  // The dark pixel of item 7 lowers its top-left corner equally in all channels (grey, no tint).
  const float corner = px[r.y * 64 + r.x];
  EXPECT_LT(corner, 1.f);
  EXPECT_GT(corner, 0.f);
  EXPECT_FLOAT_EQ(px[4096 + r.y * 64 + r.x], corner);
  EXPECT_FLOAT_EQ(px[2 * 4096 + r.y * 64 + r.x], corner);

  for (int cls = 0; cls < kSceneClasses; ++cls) {
    std::vector<std::string> prompts = class_prompts(cls);
    ASSERT_EQ(prompts.size(), prompt_templates().size());
    for (const std::string& p : prompts) EXPECT_EQ(count_occurrences(p, class_nouns()[cls]), 1) << p;
    // The grammar's prompts parse to the class with no colour.
    for (int t = 0; t < 3; ++t) {
      Meaning m = parse_caption(prompts[t]);
      ASSERT_EQ(m.mentions.size(), 1u);
      EXPECT_EQ(m.mentions[0].cls, cls);
      EXPECT_EQ(m.mentions[0].colour, -1);
    }
  }
  EXPECT_EQ(class_prompts(9)[3], "a photo of an ankle boot");
  EXPECT_EQ(class_prompts(0)[1], "a t-shirt in the centre");
}

TEST(SceneData, PreviewSheetIsWrittenAsPng) {
  const bool real = have_fashion_mnist();
  SceneDataOptions o = small_options();
  SceneDataset data = real ? SceneDataset::load(o, default_fashion_mnist_dir()) : synthetic_dataset();
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < 12; ++i) idx.push_back(i);
  std::vector<PreviewTile> tiles = scene_tiles(data, SceneSplit::test, idx, true);
  cv::Mat sheet = preview_sheet(tiles, 64, 4, 3);
  const fs::path path = fs::path(MOELAB_BINARY_DIR) / "scenes_preview_test.png";
  write_png(sheet, path.string());
  cv::Mat back = cv::imread(path.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(back.cols, 4 * (192 + 6) + 6);
  EXPECT_EQ(back.rows, sheet.rows);
  EXPECT_EQ(cv::norm(back, sheet, cv::NORM_INF), 0.0);
  EXPECT_THROW(write_png(sheet, "/nonexistent_dir/x.png"), Error);
  if (!real) GTEST_SKIP() << "dataset-fashion-mnist not installed: the sheet used synthetic items";
}
