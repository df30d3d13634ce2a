#include "vision/data/loader.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "core/util/check.h"
#include "core/util/rng.h"

namespace moelab::vision {
namespace {

// pixels (B, C, H, W) uint8 -> normalized f32 tensor
Tensor to_tensor(const ImageSet& set, const std::vector<uint8_t>& pixels, int64_t batch) {
  const int64_t c = set.channels, hw = set.height * set.width;
  Tensor out = Tensor::empty({batch, c, set.height, set.width});
  float* dst = out.data<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = set.mean.empty() ? 0.f : set.mean[ch % set.mean.size()];
      const float inv_s = set.std.empty() ? 1.f : 1.f / set.std[ch % set.std.size()];
      const uint8_t* src = pixels.data() + (b * c + ch) * hw;
      float* o = dst + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) o[i] = (src[i] * (1.f / 255.f) - m) * inv_s;
    }
  return out;
}

Batch gather(const ImageSet& set, const std::vector<int64_t>& indices, std::vector<uint8_t>& pixels) {
  Batch batch;
  batch.indices = indices;
  const int64_t n = static_cast<int64_t>(indices.size());
  std::vector<int64_t> labels(n);
  for (int64_t b = 0; b < n; ++b) {
    MOELAB_CHECK(indices[b] >= 0 && indices[b] < set.count,
                 "image index " << indices[b] << " out of range for a set of " << set.count);
    labels[b] = set.labels[indices[b]];
  }
  batch.images = to_tensor(set, pixels, n);
  batch.labels = Tensor::from_vector(labels, {n});
  return batch;
}

std::vector<uint8_t> copy_pixels(const ImageSet& set, const std::vector<int64_t>& indices) {
  const int64_t bytes = set.image_bytes();
  std::vector<uint8_t> pixels(indices.size() * bytes);
  for (size_t b = 0; b < indices.size(); ++b) {
    MOELAB_CHECK(indices[b] >= 0 && indices[b] < set.count,
                 "image index " << indices[b] << " out of range for a set of " << set.count);
    std::copy_n(set.image(indices[b]), bytes, pixels.data() + b * bytes);
  }
  return pixels;
}

}  // namespace

ImageSet subset(const ImageSet& set, const std::vector<int64_t>& indices) {
  ImageSet out;
  out.count = static_cast<int64_t>(indices.size());
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  out.pixels = copy_pixels(set, indices);
  out.labels.reserve(indices.size());
  for (int64_t i : indices) out.labels.push_back(set.labels[i]);
  out.num_classes = set.num_classes;
  out.class_names = set.class_names;
  out.mean = set.mean;
  out.std = set.std;
  return out;
}

SplitIndices split_train_val(int64_t count, int64_t val_count, uint64_t split_seed) {
  MOELAB_CHECK(val_count >= 0 && val_count < count,
               "validation size " << val_count << " must be in [0, " << count << ") (the set has " << count
                                  << " images)");
  std::vector<int64_t> perm(count);
  std::iota(perm.begin(), perm.end(), 0);
  RngStream rng(split_seed, "data/split");
  for (int64_t i = count - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  SplitIndices s;
  s.train.assign(perm.begin(), perm.end() - val_count);
  s.val.assign(perm.end() - val_count, perm.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  return s;
}

Batch make_batch(const ImageSet& set, const std::vector<int64_t>& indices) {
  std::vector<uint8_t> pixels = copy_pixels(set, indices);
  return gather(set, indices, pixels);
}

Batch batch_range(const ImageSet& set, int64_t start, int64_t count) {
  MOELAB_CHECK(start >= 0 && start < set.count, "batch start " << start << " outside a set of " << set.count);
  std::vector<int64_t> indices(std::min(count, set.count - start));
  std::iota(indices.begin(), indices.end(), start);
  return make_batch(set, indices);
}

ImageLoader::ImageLoader(const ImageSet& set, int64_t batch_size, AugmentConfig augment, uint64_t seed)
    : set_(set), batch_size_(batch_size), augment_(augment), seed_(seed) {
  MOELAB_CHECK(batch_size > 0, "batch size must be positive, got " << batch_size);
  MOELAB_CHECK(set.count >= batch_size,
               "batch size " << batch_size << " is larger than the training set (" << set.count << " images)");
  batches_per_epoch_ = set.count / batch_size;
  shuffle_epoch();
}

void ImageLoader::shuffle_epoch() {
  order_.resize(set_.count);
  std::iota(order_.begin(), order_.end(), 0);
  RngStream rng(seed_, "data/epoch/" + std::to_string(epoch_));
  for (int64_t i = set_.count - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
}

void ImageLoader::set_state(int64_t epoch, int64_t position) {
  MOELAB_CHECK(epoch >= 0 && position >= 0 && position <= batches_per_epoch_,
               "loader state (epoch " << epoch << ", position " << position << ") is invalid for "
                                      << batches_per_epoch_ << " batches per epoch");
  epoch_ = epoch;
  position_ = position;
  shuffle_epoch();
}

Batch ImageLoader::next() {
  if (position_ == batches_per_epoch_) {
    ++epoch_;
    position_ = 0;
    shuffle_epoch();
  }
  const int64_t first = position_ * batch_size_;
  std::vector<int64_t> indices(order_.begin() + first, order_.begin() + first + batch_size_);
  std::vector<uint8_t> pixels = copy_pixels(set_, indices);
  if (augment_.enabled()) {
    const uint64_t key = hash_stream_key(seed_, "data/augment/epoch/" + std::to_string(epoch_));
    const int64_t bytes = set_.image_bytes();
    for (int64_t b = 0; b < batch_size_; ++b) {
      RngStream rng = RngStream::from_state(key, static_cast<uint64_t>(first + b) * kAugmentDraws);
      augment_image(pixels.data() + b * bytes, set_.channels, set_.height, set_.width, augment_, rng);
    }
  }
  ++position_;
  return gather(set_, indices, pixels);
}

}  // namespace moelab::vision
