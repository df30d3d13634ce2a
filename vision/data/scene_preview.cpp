#include "vision/data/scene_preview.h"

#include <algorithm>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/util/check.h"

namespace moelab::vision {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kFontScale = 0.36;
constexpr int kLineHeight = 13, kPad = 6;

// Greedy word wrap so that every line fits `width` pixels (a single over-long word stays on its own line).
std::vector<std::string> wrap(const std::string& text, int width) {
  std::vector<std::string> lines;
  std::string line, word;
  auto fits = [&](const std::string& s) {
    int baseline = 0;
    return cv::getTextSize(s, kFont, kFontScale, 1, &baseline).width <= width;
  };
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    word = text.substr(start, end - start);
    start = end + 1;
    std::string candidate = line.empty() ? word : line + " " + word;
    if (fits(candidate) || line.empty()) {
      line = candidate;
    } else {
      lines.push_back(line);
      line = word;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

cv::Mat preview_sheet(const std::vector<PreviewTile>& tiles, int canvas, int columns, int scale) {
  MOELAB_CHECK(!tiles.empty() && columns > 0 && scale > 0,
               "a preview sheet needs tiles, columns > 0 and scale > 0 (got " << tiles.size() << ", " << columns
                                                                              << ", " << scale << ")");
  const int side = canvas * scale, text_width = side - 4;
  std::vector<std::vector<std::pair<std::string, bool>>> wrapped(tiles.size());
  size_t max_lines = 0;
  for (size_t t = 0; t < tiles.size(); ++t) {
    for (size_t l = 0; l < tiles[t].lines.size(); ++l) {
      const bool red = l < tiles[t].highlight.size() && tiles[t].highlight[l];
      for (const std::string& w : wrap(tiles[t].lines[l], text_width)) wrapped[t].emplace_back(w, red);
    }
    max_lines = std::max(max_lines, wrapped[t].size());
  }
  const int tile_w = side + kPad, tile_h = side + kPad + static_cast<int>(max_lines) * kLineHeight + kPad;
  const int rows = (static_cast<int>(tiles.size()) + columns - 1) / columns;
  cv::Mat sheet(rows * tile_h + kPad, columns * tile_w + kPad, CV_8UC3, cv::Scalar(48, 48, 48));
  for (size_t t = 0; t < tiles.size(); ++t) {
    MOELAB_CHECK(tiles[t].image.size() == static_cast<size_t>(canvas) * canvas * 3,
                 "preview tile " << t << " holds " << tiles[t].image.size() << " bytes, not " << canvas << "x"
                                 << canvas << "x3");
    const int x0 = kPad + static_cast<int>(t % columns) * tile_w, y0 = kPad + static_cast<int>(t / columns) * tile_h;
    cv::Mat rgb(canvas, canvas, CV_8UC3, const_cast<uint8_t*>(tiles[t].image.data())), bgr, big;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    cv::resize(bgr, big, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
    big.copyTo(sheet(cv::Rect(x0, y0, side, side)));
    for (size_t l = 0; l < wrapped[t].size(); ++l) {
      const cv::Scalar colour = wrapped[t][l].second ? cv::Scalar(110, 110, 255) : cv::Scalar(235, 235, 235);
      cv::putText(sheet, wrapped[t][l].first, cv::Point(x0 + 2, y0 + side + 2 + (static_cast<int>(l) + 1) * kLineHeight - 3),
                  kFont, kFontScale, colour, 1, cv::LINE_AA);
    }
  }
  return sheet;
}

void write_png(const cv::Mat& image, const std::string& path) {
  bool ok = false;
  try {
    ok = cv::imwrite(path, image, {cv::IMWRITE_PNG_COMPRESSION, 9});
  } catch (const cv::Exception& e) {
    MOELAB_FAIL("cannot write PNG " << path << ": " << e.what());
  }
  MOELAB_CHECK(ok, "cannot write PNG " << path << " (does its folder exist and is it writable?)");
}

std::vector<PreviewTile> scene_tiles(const SceneDataset& data, SceneSplit split, const std::vector<int64_t>& indices,
                                     bool negatives) {
  std::vector<PreviewTile> tiles;
  for (int64_t i : indices) {
    PreviewTile tile;
    tile.image = data.render(split, i);
    tile.lines.push_back(data.caption(split, i, 0).text);
    tile.highlight.push_back(false);
    if (negatives)
      for (int k = 0; k < kNegativeKinds; ++k)
        if (auto pair = data.hard_negative(split, i, static_cast<NegativeKind>(k))) {
          tile.lines.push_back(std::string(negative_kind_name(pair->kind)) + ": " + pair->negative.text);
          tile.highlight.push_back(true);
        }
    tiles.push_back(std::move(tile));
  }
  return tiles;
}

}  // namespace moelab::vision
