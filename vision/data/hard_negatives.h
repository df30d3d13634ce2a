#pragma once
// Hard negative captions (ARO / SugarCrepe style): a true caption edited on its meaning, by swapping two
// objects' colours, swapping positions (or reversing a relation), replacing one object's class or
// changing a count. A negative is kept only if its meaning differs and it does not describe the scene.
#include <cstdint>
#include <optional>

#include "vision/data/captions.h"

namespace moelab::vision {

enum class NegativeKind { colour_swap, position_swap, object_replace, count_change };
inline constexpr int kNegativeKinds = 4;
const char* negative_kind_name(NegativeKind kind);  // "colour_swap", ...

// A negative of `kind` for `positive` (a caption that describes `scene`), or nullopt when the caption
// offers none (one colour only, no locations, ...). Candidate edits are tried in an order drawn from rng.
// With `avoid`, negatives naming one of its (colour, class) pairs are skipped, so that in-distribution
// negatives do not give themselves away by a combination never seen in training.
std::optional<Caption> make_negative(const Caption& positive, const Scene& scene, NegativeKind kind, RngStream& rng,
                                     const HeldoutPairs* avoid = nullptr);

struct HardNegativePair {
  NegativeKind kind = NegativeKind::colour_swap;
  Caption positive, negative;
};

// A true caption of the scene in a template that admits `kind` (templates tried in an order drawn from
// rng) with its negative; nullopt when no template does (e.g. a colour swap in a one-object scene).
std::optional<HardNegativePair> hard_negative_pair(const Scene& scene, NegativeKind kind, RngStream& rng,
                                                   const HeldoutPairs* avoid = nullptr);

}  // namespace moelab::vision
