#pragma once
// Per-patch expert maps: which expert each image patch went to in an MoE layer, and a picture of it
// (the image enlarged, each patch tinted with its expert's colour), as PNG via OpenCV.
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "core/moe/routing_stats.h"
#include "core/tensor/tensor.h"
#include "vision/data/image_set.h"

namespace moelab::vision {

// One layer's top expert per patch: (images, grid, grid), row-major; -1 where every assignment of the
// patch's token was dropped (capacity overflow).
struct PatchExpertMap {
  int64_t images = 0, grid = 0;
  std::vector<int32_t> experts;
  int32_t at(int64_t image, int64_t row, int64_t col) const { return experts[(image * grid + row) * grid + col]; }
};

// expert_ids: (B * T, k) or (B, T, k) integer expert per (token, slot), -1 for a dropped slot;
// weights: the same shape (float) or undefined. Tokens [first_patch_token, first_patch_token + grid^2)
// of each image are its patches in raster order (first_patch_token = 1 with a class token). The patch's
// expert is its highest-weight kept slot (the first kept slot without weights).
PatchExpertMap patch_expert_map(const Tensor& expert_ids, const Tensor& weights, int64_t batch, int64_t tokens,
                                int64_t first_patch_token, int64_t grid);

// The same from an MoE layer's routing record of a forward over `batch` images of `tokens` tokens each
// (token b * tokens + t is token t of image b); works for any number of slots per token (expert choice
// gives a token 0..E slots); dropped slots are skipped.
PatchExpertMap patch_expert_map(const moe::RoutingRecord& record, int64_t batch, int64_t tokens,
                                int64_t first_patch_token, int64_t grid);

// A distinct colour per expert (BGR), the same for every picture of a run.
cv::Vec3b expert_colour(int expert);
// "#rrggbb" of expert_colour(e), for HTML legends.
std::string expert_colour_hex(int expert);

struct PatchMapPicture {
  std::vector<int64_t> image_indices;          // images of `set` shown, one column each
  std::vector<std::string> row_names;          // one per layer ("block 1")
  std::vector<PatchExpertMap> layers;          // each covers exactly image_indices.size() images
  int num_experts = 0;
  int scale = 4;                               // pixels per image pixel
  double tint = 0.45;                          // colour weight of the tint
};

// Rows: the plain images, then one row per layer with patches tinted; column captions are class names;
// a legend of expert colours at the bottom. Returns a BGR image.
cv::Mat render_patch_maps(const ImageSet& set, const PatchMapPicture& picture);
// PNG bytes of an image (for embedding in HTML as a data URI) and a base64 encoder.
std::vector<uint8_t> encode_png(const cv::Mat& image);
std::string base64_encode(const std::vector<uint8_t>& bytes);
// Writes the PNG; throws moelab::Error naming the path on failure.
void write_png(const std::string& path, const cv::Mat& image);

}  // namespace moelab::vision
