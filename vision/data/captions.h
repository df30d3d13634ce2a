#pragma once
// Captions of compositional scenes from a small grammar, built from a structured meaning; parse_caption
// inverts the text and describes() checks a meaning against a scene. Grammar: docs/scenes.md.
#include <cstdint>
#include <string>
#include <vector>

#include "core/util/rng.h"
#include "vision/data/scene.h"

namespace moelab::vision {

// One noun phrase. Unset attributes (-1) are not claimed. A relational phrase claims that its object lies
// at (dx, dy) = (sign of column difference, sign of row difference) from the object of phrase `anchor`,
// strictly: "below it" means the same column and a lower row.
struct Mention {
  int cls = 0;
  int colour = -1;
  int size = -1;  // ObjectSize as int
  int count = 1;  // > 1 only without a location ("two red shirts")
  int cell = -1;  // absolute location
  int anchor = -1, dx = 0, dy = 0;
  bool operator==(const Mention&) const = default;
};

// A caption's claim: the scene holds exactly the objects the mentions list (counts expanded), with their
// attributes, locations and relations; `total`, when set, is the number of objects ("three items: ...").
struct Meaning {
  int total = -1;
  std::vector<Mention> mentions;
  bool operator==(const Meaning&) const = default;
};

enum class CaptionTemplate { list, absolute, relational, counted };
inline constexpr int kCaptionTemplates = 4;
const char* template_name(CaptionTemplate t);

struct Caption {
  std::string text;
  Meaning meaning;
  CaptionTemplate templ = CaptionTemplate::list;
};

// Words of the grammar.
std::string cell_phrase(int cell);           // "at the top left", "on the left", "in the centre", ...
std::string relation_phrase(int dx, int dy);  // "below it", "above and to the right of it", ...
// (dx, dy) of `subject` seen from `anchor`: signs of the column and row differences.
std::pair<int, int> relation_between(const SceneObject& subject, const SceneObject& anchor);

// The caption text of a meaning (throws on a meaning the grammar cannot say, naming the mention).
std::string caption_text(const Meaning& meaning);
// The meaning of a caption; an unknown word or broken phrase is an error naming the word and its position.
Meaning parse_caption(const std::string& text);

// True when the meaning describes the scene: a one-to-one match of the (expanded) mentions to the scene's
// objects with every stated attribute, location and relation, and the total if stated.
bool describes(const Meaning& meaning, const Scene& scene);
// True when the two meanings say the same: equal up to the order of the mentions (relations follow).
bool same_meaning(const Meaning& a, const Meaning& b);

// A caption of `scene` in template `templ`: object order, and whether sizes are said, are drawn from rng.
Caption make_caption(const Scene& scene, CaptionTemplate templ, RngStream& rng);
// A caption in a template drawn from rng.
Caption make_caption(const Scene& scene, RngStream& rng);

}  // namespace moelab::vision
