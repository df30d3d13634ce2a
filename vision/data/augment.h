#pragma once
// Training-time augmentation with OpenCV: random crop after zero padding, random horizontal flip.
#include <cstdint>

#include "core/util/rng.h"

namespace moelab::vision {

struct AugmentConfig {
  int crop_padding = 0;          // pad by this many pixels, then crop back at a random offset (0: off)
  bool horizontal_flip = false;  // mirror left-right with probability 1/2
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

// Number of draws augment_image takes from its stream (fixed, so streams can be positioned per image).
constexpr uint64_t kAugmentDraws = 3;

// image: (channels, height, width) uint8 planes, modified in place.
void augment_image(uint8_t* image, int64_t channels, int64_t height, int64_t width, const AugmentConfig& config,
                   RngStream& rng);

}  // namespace moelab::vision
