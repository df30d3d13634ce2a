#pragma once
// An in-memory labelled image set: uint8 pixels (N, C, H, W) and integer labels in [0, num_classes).
#include <cstdint>
#include <string>
#include <vector>

namespace moelab::vision {

struct ImageSet {
  int64_t count = 0, channels = 1, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // (count, channels, height, width)
  std::vector<int32_t> labels;  // (count)
  int num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  // Per-channel normalization applied when batches are made: (x/255 - mean) / std.
  std::vector<float> mean, std;

  int64_t image_bytes() const { return channels * height * width; }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_bytes(); }
};

// The images of `set` at `indices`, in that order (the class names and normalization are kept).
ImageSet subset(const ImageSet& set, const std::vector<int64_t>& indices);

// Deterministic train/validation split: a permutation drawn from `split_seed`; the last `val_count`
// indices of it are the validation part. Both parts come back sorted.
struct SplitIndices {
  std::vector<int64_t> train, val;
};
SplitIndices split_train_val(int64_t count, int64_t val_count, uint64_t split_seed);

}  // namespace moelab::vision
