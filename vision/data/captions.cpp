#include "vision/data/captions.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <numeric>
#include <sstream>
#include <tuple>

#include "core/util/check.h"

namespace moelab::vision {
namespace {

const std::array<std::string, 4> kNumberWords = {"zero", "one", "two", "three"};
const std::array<std::string, 2> kSizeWords = {"small", "large"};

int sign(int v) { return (v > 0) - (v < 0); }

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string w; is >> w;) out.push_back(w);
  return out;
}

bool starts_with_vowel(const std::string& w) { return !w.empty() && std::string("aeiou").find(w[0]) != std::string::npos; }

std::string mention_text(const Mention& m, int index) {
  MOELAB_CHECK(m.cls >= 0 && m.cls < kSceneClasses, "mention " << index << ": class " << m.cls << " out of range");
  MOELAB_CHECK(m.colour >= -1 && m.colour < kSceneColours, "mention " << index << ": colour " << m.colour
                                                                       << " out of range");
  MOELAB_CHECK(m.size >= -1 && m.size <= 1, "mention " << index << ": size " << m.size << " out of range");
  MOELAB_CHECK(m.count >= 1 && m.count <= 3, "mention " << index << ": count " << m.count << " is not in [1, 3]");
  MOELAB_CHECK(m.count == 1 || (m.cell < 0 && m.anchor < 0),
               "mention " << index << ": a group of " << m.count << " cannot have a location");
  MOELAB_CHECK(m.cell < 0 || m.anchor < 0, "mention " << index << " has both a cell and a relation");
  MOELAB_CHECK(m.cell >= -1 && m.cell < kSceneCells, "mention " << index << ": cell " << m.cell << " out of range");
  MOELAB_CHECK(m.anchor < 0 || m.anchor == index - 1,
               "mention " << index << ": 'it' can only refer to the previous mention, not " << m.anchor);
  std::string words;
  if (m.size >= 0) words += kSizeWords[m.size] + " ";
  if (m.colour >= 0) words += colour_names()[m.colour] + " ";
  words += m.count == 1 ? class_nouns()[m.cls] : class_plurals()[m.cls];
  std::string det = m.count > 1 ? kNumberWords[m.count] : (starts_with_vowel(words) ? "an" : "a");
  std::string text = det + " " + words;
  if (m.cell >= 0) text += " " + cell_phrase(m.cell);
  if (m.anchor >= 0) text += " " + relation_phrase(m.dx, m.dy);
  return text;
}

// The words of the phrase at `pos` if `phrase` matches there, else 0.
size_t match_at(const std::vector<std::string>& words, size_t pos, const std::string& phrase) {
  std::vector<std::string> p = split_words(phrase);
  if (pos + p.size() > words.size()) return 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (words[pos + i] != p[i]) return 0;
  return p.size();
}

class CaptionParser {
 public:
  explicit CaptionParser(const std::string& text) : text_(text) {
    std::string spaced;
    for (char c : text) {
      if (c == ',' || c == ':') {
        spaced += ' ';
        spaced += c;
        spaced += ' ';
      } else {
        spaced += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    words_ = split_words(spaced);
  }

  Meaning parse() {
    Meaning m;
    if (words_.size() >= 2 && number(words_[0]) > 0 && (words_[1] == "item" || words_[1] == "items")) {
      m.total = number(words_[0]);
      if ((m.total == 1) != (words_[1] == "item")) fail(1, "'" + words_[1] + "' does not agree with the number");
      pos_ = 2;
      expect(":");
    }
    m.mentions.push_back(phrase(0));
    while (pos_ < words_.size()) {
      if (words_[pos_] != "," && words_[pos_] != "and") fail(pos_, "expected ',' or 'and' between phrases");
      ++pos_;
      m.mentions.push_back(phrase(static_cast<int>(m.mentions.size())));
    }
    return m;
  }

 private:
  static int number(const std::string& w) {
    for (int n = 1; n < static_cast<int>(kNumberWords.size()); ++n)
      if (w == kNumberWords[n]) return n;
    return 0;
  }

  [[noreturn]] void fail(size_t at, const std::string& what) const {
    std::string word = at < words_.size() ? "'" + words_[at] + "'" : "the end";
    MOELAB_FAIL("caption '" << text_ << "': word " << at + 1 << " (" << word << "): " << what);
  }

  void expect(const std::string& w) {
    if (pos_ >= words_.size() || words_[pos_] != w) fail(pos_, "expected '" + w + "'");
    ++pos_;
  }

  // The index of the longest of `phrases` matching at pos_ (advancing past it), or -1.
  template <size_t N>
  int longest(const std::array<std::string, N>& phrases) {
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < N; ++i)
      if (size_t len = match_at(words_, pos_, phrases[i]); len > best_len) {
        best = static_cast<int>(i);
        best_len = len;
      }
    pos_ += best_len;
    return best;
  }

  Mention phrase(int index) {
    Mention m;
    if (pos_ >= words_.size()) fail(pos_, "expected a phrase ('a', 'an', 'two', ...)");
    const std::string& det = words_[pos_];
    if (det == "a" || det == "an") {
      m.count = 1;
    } else if (int n = number(det); n > 0) {
      m.count = n;
    } else {
      fail(pos_, "expected 'a', 'an' or a number to start a phrase");
    }
    ++pos_;
    if (int s = longest(kSizeWords); s >= 0) m.size = s;
    if (int c = longest(colour_names()); c >= 0) m.colour = c;
    const size_t noun_pos = pos_;
    std::array<std::string, 2 * kSceneClasses> nouns;
    for (int k = 0; k < kSceneClasses; ++k) {
      nouns[k] = class_nouns()[k];
      nouns[kSceneClasses + k] = class_plurals()[k];
    }
    const int noun = longest(nouns);
    if (noun < 0) fail(noun_pos, "expected a size, a colour or a noun (t-shirt, trouser, ..., ankle boot)");
    m.cls = noun % kSceneClasses;
    if ((noun >= kSceneClasses) != (m.count > 1)) fail(noun_pos, "noun does not agree in number with '" + det + "'");
    std::array<std::string, kSceneCells> cells;
    for (int c = 0; c < kSceneCells; ++c) cells[c] = cell_phrase(c);
    std::array<std::string, 8> relations;
    std::array<std::pair<int, int>, 8> deltas;
    for (int i = 0, dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if (dx != 0 || dy != 0) {
          relations[i] = relation_phrase(dx, dy);
          deltas[i++] = {dx, dy};
        }
    const size_t loc_pos = pos_;
    if (int c = longest(cells); c >= 0) {
      m.cell = c;
    } else if (int r = longest(relations); r >= 0) {
      if (index == 0) fail(loc_pos, "'it' has nothing to refer to in the first phrase");
      m.anchor = index - 1;
      std::tie(m.dx, m.dy) = deltas[r];
    }
    if (m.count > 1 && (m.cell >= 0 || m.anchor >= 0)) fail(loc_pos, "a group of several items cannot have a location");
    return m;
  }

  std::string text_;
  std::vector<std::string> words_;
  size_t pos_ = 0;
};

// Relation edges (u < v, dx, dy) of a meaning with mention indices renamed by `perm`.
std::vector<std::tuple<int, int, int, int>> edges(const Meaning& m, const std::vector<int>& perm) {
  std::vector<std::tuple<int, int, int, int>> out;
  for (size_t i = 0; i < m.mentions.size(); ++i) {
    const Mention& x = m.mentions[i];
    if (x.anchor < 0) continue;
    int u = perm[i], v = perm[x.anchor], dx = x.dx, dy = x.dy;
    if (u > v) {
      std::swap(u, v);
      dx = -dx;
      dy = -dy;
    }
    out.emplace_back(u, v, dx, dy);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool same_attributes(const Mention& a, const Mention& b) {
  return a.cls == b.cls && a.colour == b.colour && a.size == b.size && a.count == b.count && a.cell == b.cell;
}

}  // namespace

const char* template_name(CaptionTemplate t) {
  switch (t) {
    case CaptionTemplate::list: return "list";
    case CaptionTemplate::absolute: return "absolute";
    case CaptionTemplate::relational: return "relational";
    case CaptionTemplate::counted: return "counted";
  }
  return "?";
}

std::string cell_phrase(int cell) {
  static const std::array<std::string, kSceneCells> phrases = {
      "at the top left",    "at the top",   "at the top right",    "on the left", "in the centre",
      "on the right",       "at the bottom left", "at the bottom", "at the bottom right"};
  MOELAB_CHECK(cell >= 0 && cell < kSceneCells, "cell " << cell << " outside [0, " << kSceneCells << ")");
  return phrases[cell];
}

std::string relation_phrase(int dx, int dy) {
  MOELAB_CHECK(dx >= -1 && dx <= 1 && dy >= -1 && dy <= 1 && (dx != 0 || dy != 0),
               "relation (dx " << dx << ", dy " << dy << ") is not one of the 8 directions");
  const std::string vertical = dy < 0 ? "above" : "below";
  const std::string horizontal = dx < 0 ? "to the left of" : "to the right of";
  if (dx == 0) return vertical + " it";
  if (dy == 0) return horizontal + " it";
  return vertical + " and " + horizontal + " it";
}

std::pair<int, int> relation_between(const SceneObject& subject, const SceneObject& anchor) {
  return {sign(cell_col(subject.cell) - cell_col(anchor.cell)), sign(cell_row(subject.cell) - cell_row(anchor.cell))};
}

std::string caption_text(const Meaning& meaning) {
  MOELAB_CHECK(!meaning.mentions.empty(), "a caption needs at least one mention");
  std::string text;
  if (meaning.total >= 0) {
    MOELAB_CHECK(meaning.total >= 1 && meaning.total <= 3, "caption total " << meaning.total << " is not in [1, 3]");
    text = kNumberWords[meaning.total] + (meaning.total == 1 ? " item: " : " items: ");
  }
  const size_t n = meaning.mentions.size();
  for (size_t i = 0; i < n; ++i) {
    const Mention& m = meaning.mentions[i];
    if (m.anchor >= 0)
      MOELAB_CHECK(m.count == 1 && meaning.mentions[m.anchor].count == 1,
                   "mention " << i << ": relations need single items on both sides");
    if (i > 0) text += i + 1 == n ? " and " : ", ";
    text += mention_text(m, static_cast<int>(i));
  }
  return text;
}

Meaning parse_caption(const std::string& text) { return CaptionParser(text).parse(); }

bool describes(const Meaning& meaning, const Scene& scene) {
  const int n = static_cast<int>(scene.objects.size());
  if (meaning.total >= 0 && meaning.total != n) return false;
  std::vector<int> slot_mention, first_slot;
  for (size_t i = 0; i < meaning.mentions.size(); ++i) {
    first_slot.push_back(static_cast<int>(slot_mention.size()));
    for (int c = 0; c < meaning.mentions[i].count; ++c) slot_mention.push_back(static_cast<int>(i));
  }
  if (static_cast<int>(slot_mention.size()) != n) return false;
  std::vector<int> perm(n);  // slot -> scene object
  std::iota(perm.begin(), perm.end(), 0);
  do {
    bool ok = true;
    for (int s = 0; s < n && ok; ++s) {
      const Mention& m = meaning.mentions[slot_mention[s]];
      const SceneObject& o = scene.objects[perm[s]];
      ok = o.cls == m.cls && (m.colour < 0 || o.colour == m.colour) &&
           (m.size < 0 || static_cast<int>(o.size) == m.size) && (m.cell < 0 || o.cell == m.cell);
      if (ok && m.anchor >= 0) {
        const SceneObject& a = scene.objects[perm[first_slot[m.anchor]]];
        ok = relation_between(o, a) == std::make_pair(m.dx, m.dy);
      }
    }
    if (ok) return true;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return false;
}

bool same_meaning(const Meaning& a, const Meaning& b) {
  if (a.total != b.total || a.mentions.size() != b.mentions.size()) return false;
  const size_t n = a.mentions.size();
  std::vector<int> identity(n), perm(n);  // perm: a's mention -> b's mention
  std::iota(identity.begin(), identity.end(), 0);
  std::iota(perm.begin(), perm.end(), 0);
  const auto b_edges = edges(b, identity);
  do {
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) ok = same_attributes(a.mentions[i], b.mentions[perm[i]]);
    if (ok && edges(a, perm) == b_edges) return true;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return false;
}

Caption make_caption(const Scene& scene, CaptionTemplate templ, RngStream& rng) {
  const int n = static_cast<int>(scene.objects.size());
  MOELAB_CHECK(n >= 1 && n <= kMaxSceneObjects, "a scene to caption needs 1 to " << kMaxSceneObjects
                                                                                 << " objects, got " << n);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  const bool say_sizes = rng.uniform() < 0.5;

  Caption cap;
  cap.templ = templ;
  Meaning& m = cap.meaning;
  for (int i = 0; i < n; ++i) {
    const SceneObject& o = scene.objects[order[i]];
    const int size = say_sizes && templ != CaptionTemplate::counted ? static_cast<int>(o.size) : -1;
    if (templ == CaptionTemplate::counted || templ == CaptionTemplate::list) {
      // Objects that would be said alike form one group ("two red shirts"); counted captions omit sizes.
      auto it = std::find_if(m.mentions.begin(), m.mentions.end(), [&](const Mention& g) {
        return g.cls == o.cls && g.colour == o.colour && g.size == size;
      });
      if (it != m.mentions.end()) {
        ++it->count;
        continue;
      }
    }
    Mention x;
    x.cls = o.cls;
    x.colour = o.colour;
    x.size = size;
    if (templ == CaptionTemplate::absolute || (templ == CaptionTemplate::relational && i == 0)) x.cell = o.cell;
    if (templ == CaptionTemplate::relational && i > 0) {
      x.anchor = i - 1;
      std::tie(x.dx, x.dy) = relation_between(o, scene.objects[order[i - 1]]);
    }
    m.mentions.push_back(x);
  }
  if (templ == CaptionTemplate::counted) m.total = n;
  cap.text = caption_text(m);
  return cap;
}

Caption make_caption(const Scene& scene, RngStream& rng) {
  const auto templ = static_cast<CaptionTemplate>(rng.below(kCaptionTemplates));
  return make_caption(scene, templ, rng);
}

}  // namespace moelab::vision
