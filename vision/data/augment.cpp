#include "vision/data/augment.h"

#include <opencv2/core.hpp>

#include "core/util/check.h"

namespace moelab::vision {

void augment_image(uint8_t* image, int64_t channels, int64_t height, int64_t width, const AugmentConfig& config,
                   RngStream& rng) {
  MOELAB_CHECK(config.crop_padding >= 0, "augmentation crop_padding must be >= 0, got " << config.crop_padding);
  // Always take the same number of draws so that every image's stream position is fixed.
  const int span = 2 * config.crop_padding + 1;
  const int dx = static_cast<int>(rng.below(span)), dy = static_cast<int>(rng.below(span));
  const bool flip = config.horizontal_flip && rng.uniform() < 0.5;
  if (!config.horizontal_flip) rng.uniform();
  const int h = static_cast<int>(height), w = static_cast<int>(width), p = config.crop_padding;
  for (int64_t c = 0; c < channels; ++c) {
    cv::Mat plane(h, w, CV_8UC1, image + c * height * width);
    if (p > 0) {
      cv::Mat padded;
      cv::copyMakeBorder(plane, padded, p, p, p, p, cv::BORDER_CONSTANT, cv::Scalar(0));
      padded(cv::Rect(dx, dy, w, h)).copyTo(plane);
    }
    if (flip) {
      cv::Mat mirrored;
      cv::flip(plane, mirrored, 1);
      mirrored.copyTo(plane);
    }
  }
}

}  // namespace moelab::vision
