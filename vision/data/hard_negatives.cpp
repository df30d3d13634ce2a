#include "vision/data/hard_negatives.h"

#include <array>
#include <functional>
#include <numeric>
#include <vector>

#include "core/util/check.h"

namespace moelab::vision {
namespace {

using Edit = std::function<void(Meaning&)>;

std::vector<Edit> colour_swaps(const Meaning& m) {
  std::vector<Edit> out;
  for (size_t i = 0; i < m.mentions.size(); ++i)
    for (size_t j = i + 1; j < m.mentions.size(); ++j)
      if (m.mentions[i].colour >= 0 && m.mentions[j].colour >= 0 && m.mentions[i].colour != m.mentions[j].colour)
        out.push_back([i, j](Meaning& x) { std::swap(x.mentions[i].colour, x.mentions[j].colour); });
  return out;
}

std::vector<Edit> position_swaps(const Meaning& m) {
  std::vector<Edit> out;
  for (size_t i = 0; i < m.mentions.size(); ++i) {
    for (size_t j = i + 1; j < m.mentions.size(); ++j)
      if (m.mentions[i].cell >= 0 && m.mentions[j].cell >= 0)
        out.push_back([i, j](Meaning& x) { std::swap(x.mentions[i].cell, x.mentions[j].cell); });
    // Reversing a relation swaps the two objects' places relative to each other.
    if (m.mentions[i].anchor >= 0)
      out.push_back([i](Meaning& x) {
        x.mentions[i].dx = -x.mentions[i].dx;
        x.mentions[i].dy = -x.mentions[i].dy;
      });
  }
  return out;
}

std::vector<Edit> object_replacements(const Meaning& m) {
  std::vector<Edit> out;
  for (size_t i = 0; i < m.mentions.size(); ++i)
    for (int c = 0; c < kSceneClasses; ++c)
      if (c != m.mentions[i].cls) out.push_back([i, c](Meaning& x) { x.mentions[i].cls = c; });
  return out;
}

std::vector<Edit> count_changes(const Meaning& m) {
  std::vector<Edit> out;
  int objects = 0;
  for (const Mention& x : m.mentions) objects += x.count;
  for (size_t i = 0; i < m.mentions.size(); ++i) {
    const Mention& x = m.mentions[i];
    bool anchored = false;
    for (const Mention& y : m.mentions) anchored |= y.anchor == static_cast<int>(i);
    if (x.cell >= 0 || x.anchor >= 0 || anchored) continue;
    for (int delta : {-1, 1}) {
      // Counts and totals stay within what true captions say (1 to 3 objects).
      const int count = x.count + delta, total = objects + delta;
      if (count < 1 || count > kMaxSceneObjects || total < 1 || total > kMaxSceneObjects) continue;
      out.push_back([i, delta](Meaning& y) {
        y.mentions[i].count += delta;
        if (y.total >= 0) y.total += delta;
      });
    }
  }
  return out;
}

// True captions without locations group the objects they would say alike ("two red shirts"); a negative
// listing two alike mentions ("a red shirt and a red shirt") would be told apart by its wording alone.
bool has_alike_mentions(const Meaning& m) {
  for (const Mention& x : m.mentions)
    if (x.cell >= 0 || x.anchor >= 0) return false;
  for (size_t i = 0; i < m.mentions.size(); ++i)
    for (size_t j = i + 1; j < m.mentions.size(); ++j) {
      const Mention &a = m.mentions[i], &b = m.mentions[j];
      if (a.cls == b.cls && a.colour == b.colour && a.size == b.size) return true;
    }
  return false;
}

}  // namespace

const char* negative_kind_name(NegativeKind kind) {
  switch (kind) {
    case NegativeKind::colour_swap: return "colour_swap";
    case NegativeKind::position_swap: return "position_swap";
    case NegativeKind::object_replace: return "object_replace";
    case NegativeKind::count_change: return "count_change";
  }
  return "?";
}

std::optional<Caption> make_negative(const Caption& positive, const Scene& scene, NegativeKind kind, RngStream& rng,
                                     const HeldoutPairs* avoid) {
  const Meaning& m = positive.meaning;
  std::vector<Edit> edits;
  switch (kind) {
    case NegativeKind::colour_swap: edits = colour_swaps(m); break;
    case NegativeKind::position_swap: edits = position_swaps(m); break;
    case NegativeKind::object_replace: edits = object_replacements(m); break;
    case NegativeKind::count_change: edits = count_changes(m); break;
  }
  for (size_t i = edits.size(); i > 1; --i) std::swap(edits[i - 1], edits[rng.below(i)]);
  for (const Edit& edit : edits) {
    Caption neg;
    neg.templ = positive.templ;
    neg.meaning = m;
    edit(neg.meaning);
    // An edit that says the same (two identical objects swapped) or happens to be true is no negative.
    if (same_meaning(neg.meaning, m) || describes(neg.meaning, scene) || has_alike_mentions(neg.meaning)) continue;
    bool names_avoided = false;
    for (const Mention& x : neg.meaning.mentions) names_avoided |= avoid && x.colour >= 0 && avoid->contains(x.colour, x.cls);
    if (names_avoided) continue;
    neg.text = caption_text(neg.meaning);
    return neg;
  }
  return std::nullopt;
}

std::optional<HardNegativePair> hard_negative_pair(const Scene& scene, NegativeKind kind, RngStream& rng,
                                                   const HeldoutPairs* avoid) {
  std::array<int, kCaptionTemplates> order;
  std::iota(order.begin(), order.end(), 0);
  for (int i = kCaptionTemplates - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  for (int t : order) {
    HardNegativePair pair;
    pair.kind = kind;
    pair.positive = make_caption(scene, static_cast<CaptionTemplate>(t), rng);
    std::optional<Caption> neg = make_negative(pair.positive, scene, kind, rng, avoid);
    if (!neg) continue;
    pair.negative = std::move(*neg);
    return pair;
  }
  return std::nullopt;
}

}  // namespace moelab::vision
