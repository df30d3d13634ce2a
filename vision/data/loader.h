#pragma once
// Batches of an ImageSet as tensors: images (B, C, H, W) f32 normalized by the set's mean/std,
// labels (B) i64. The training loader shuffles deterministically per epoch from the seed and resumes
// exactly from (epoch, position); augmentation draws come from a per-image stream position.
#include <cstdint>
#include <vector>

#include "core/tensor/tensor.h"
#include "vision/data/augment.h"
#include "vision/data/image_set.h"

namespace moelab::vision {

struct Batch {
  Tensor images;                 // (B, C, H, W) f32
  Tensor labels;                 // (B) i64
  std::vector<int64_t> indices;  // positions in the ImageSet
};

// Images at `indices`, normalized, without augmentation.
Batch make_batch(const ImageSet& set, const std::vector<int64_t>& indices);
// The ordered batch [start, start + count) clipped to the set (evaluation).
Batch batch_range(const ImageSet& set, int64_t start, int64_t count);

class ImageLoader {
 public:
  // `set` must outlive the loader. Training batches are always full (a partial last batch is dropped).
  ImageLoader(const ImageSet& set, int64_t batch_size, AugmentConfig augment, uint64_t seed);

  Batch next();
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  // batches already taken in this epoch
  void set_state(int64_t epoch, int64_t position);

 private:
  void shuffle_epoch();

  const ImageSet& set_;
  int64_t batch_size_, batches_per_epoch_;
  AugmentConfig augment_;
  uint64_t seed_;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;  // this epoch's permutation
};

}  // namespace moelab::vision
