#pragma once
// A preview sheet of scenes: a grid of upscaled scene images, each with its text lines (caption, hard
// negatives, ...) word-wrapped below it, drawn with OpenCV and written as PNG.
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "vision/data/scene_dataset.h"

namespace moelab::vision {

struct PreviewTile {
  std::vector<uint8_t> image;      // (canvas, canvas, 3) RGB
  std::vector<std::string> lines;  // each word-wrapped to the tile width
  std::vector<bool> highlight;     // per line: drawn in red (e.g. a negative) instead of white
};

// The sheet as a BGR image: `columns` tiles per row, images scaled by `scale` (nearest neighbour).
cv::Mat preview_sheet(const std::vector<PreviewTile>& tiles, int canvas, int columns, int scale);
void write_png(const cv::Mat& image, const std::string& path);

// Tiles of scenes `indices` of `split`: caption variant 0, and (if `negatives`) a "not:" line for each
// hard negative kind the scene admits.
std::vector<PreviewTile> scene_tiles(const SceneDataset& data, SceneSplit split, const std::vector<int64_t>& indices,
                                     bool negatives);

}  // namespace moelab::vision
