#include "vision/analysis/patch_map.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/util/check.h"

namespace moelab::vision {

PatchExpertMap patch_expert_map(const Tensor& expert_ids, const Tensor& weights, int64_t batch, int64_t tokens,
                                int64_t first_patch_token, int64_t grid) {
  MOELAB_CHECK(expert_ids.defined() && expert_ids.dim() >= 2 && expert_ids.numel() % (batch * tokens) == 0,
               "patch_expert_map: expert ids " << (expert_ids.defined() ? expert_ids.shape().str() : "(none)")
                                               << " do not hold " << batch << " images x " << tokens << " tokens");
  MOELAB_CHECK(first_patch_token >= 0 && first_patch_token + grid * grid <= tokens,
               "patch_expert_map: " << grid << "x" << grid << " patches from token " << first_patch_token
                                    << " do not fit in " << tokens << " tokens");
  const int64_t k = expert_ids.numel() / (batch * tokens);
  std::vector<int64_t> ids = expert_ids.to(DType::i64).to_vector<int64_t>();
  std::vector<double> w;
  if (weights.defined()) {
    MOELAB_CHECK(weights.numel() == expert_ids.numel(), "patch_expert_map: weights " << weights.shape().str()
                                                                                     << " do not match expert ids "
                                                                                     << expert_ids.shape().str());
    w = weights.to(DType::f64).to_vector<double>();
  }
  PatchExpertMap map;
  map.images = batch;
  map.grid = grid;
  map.experts.assign(batch * grid * grid, -1);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < grid * grid; ++p) {
      const int64_t row = (b * tokens + first_patch_token + p) * k;
      int64_t best = -1;
      for (int64_t s = 0; s < k; ++s) {
        if (ids[row + s] < 0) continue;
        if (best < 0 || (!w.empty() && w[row + s] > w[row + best])) best = s;
      }
      map.experts[b * grid * grid + p] = best < 0 ? -1 : static_cast<int32_t>(ids[row + best]);
    }
  return map;
}

PatchExpertMap patch_expert_map(const moe::RoutingRecord& record, int64_t batch, int64_t tokens,
                                int64_t first_patch_token, int64_t grid) {
  MOELAB_CHECK(record.num_tokens == batch * tokens &&
                   static_cast<int64_t>(record.token_offsets.size()) == record.num_tokens + 1,
               "patch_expert_map: the routing record holds " << record.num_tokens << " tokens, not " << batch
                                                             << " images x " << tokens << " tokens");
  MOELAB_CHECK(first_patch_token >= 0 && first_patch_token + grid * grid <= tokens,
               "patch_expert_map: " << grid << "x" << grid << " patches from token " << first_patch_token
                                    << " do not fit in " << tokens << " tokens");
  const std::vector<int64_t> top = moe::top_expert_per_token(record);
  PatchExpertMap map;
  map.images = batch;
  map.grid = grid;
  map.experts.assign(batch * grid * grid, -1);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < grid * grid; ++p)
      map.experts[b * grid * grid + p] = static_cast<int32_t>(top[b * tokens + first_patch_token + p]);
  return map;
}

cv::Vec3b expert_colour(int expert) {
  // Tableau-like qualitative colours first (RGB), then hues spread by the golden ratio.
  static const int kRgb[][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                {188, 189, 34},  {23, 190, 207}};
  if (expert < 0) return {128, 128, 128};
  if (expert < 10) return {static_cast<uchar>(kRgb[expert][2]), static_cast<uchar>(kRgb[expert][1]),
                           static_cast<uchar>(kRgb[expert][0])};
  const double hue = std::fmod(expert * 0.618033988749895, 1.0) * 180.0;  // OpenCV hue range
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, 220)), bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  return bgr.at<cv::Vec3b>(0, 0);
}

std::string expert_colour_hex(int expert) {
  cv::Vec3b c = expert_colour(expert);
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[2], c[1], c[0]);
  return buf;
}

namespace {

constexpr int kMargin = 6, kLabelWidth = 70, kCaptionHeight = 16, kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kFontScale = 0.35;

// The image (first channel for grey, else the first three as RGB) enlarged `scale` times, as BGR.
cv::Mat enlarged(const ImageSet& set, int64_t index, int scale) {
  const int h = static_cast<int>(set.height), w = static_cast<int>(set.width);
  cv::Mat bgr;
  if (set.channels >= 3) {
    std::vector<cv::Mat> planes;
    for (int c = 2; c >= 0; --c)
      planes.emplace_back(h, w, CV_8UC1, const_cast<uint8_t*>(set.image(index) + c * h * w));
    cv::merge(planes, bgr);
  } else {
    cv::Mat grey(h, w, CV_8UC1, const_cast<uint8_t*>(set.image(index)));
    cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
  }
  cv::Mat big;
  cv::resize(bgr, big, cv::Size(w * scale, h * scale), 0, 0, cv::INTER_NEAREST);
  return big;
}

void tint_patches(cv::Mat& tile, const PatchExpertMap& map, int64_t image, double tint) {
  const int g = static_cast<int>(map.grid);
  const int ph = tile.rows / g, pw = tile.cols / g;
  for (int r = 0; r < g; ++r)
    for (int c = 0; c < g; ++c) {
      const int32_t e = map.at(image, r, c);
      cv::Rect cell(c * pw, r * ph, pw, ph);
      cv::Mat roi = tile(cell);
      cv::Mat colour(roi.size(), roi.type(), cv::Scalar(expert_colour(e)[0], expert_colour(e)[1], expert_colour(e)[2]));
      cv::addWeighted(roi, 1.0 - (e < 0 ? 0.0 : tint), colour, e < 0 ? 0.0 : tint, 0.0, roi);
      cv::rectangle(tile, cell, cv::Scalar(40, 40, 40), 1);
    }
}

}  // namespace

cv::Mat render_patch_maps(const ImageSet& set, const PatchMapPicture& pic) {
  const int n = static_cast<int>(pic.image_indices.size());
  MOELAB_CHECK(n > 0, "render_patch_maps: no images to draw");
  MOELAB_CHECK(pic.row_names.size() == pic.layers.size(), "render_patch_maps: " << pic.row_names.size()
                                                                                << " row names for "
                                                                                << pic.layers.size() << " layers");
  for (const auto& m : pic.layers)
    MOELAB_CHECK(m.images == n && m.grid > 0 && set.height % m.grid == 0,
                 "render_patch_maps: a layer map of " << m.images << " images on a " << m.grid
                                                      << "-grid does not match " << n << " images of height "
                                                      << set.height);
  const int tw = static_cast<int>(set.width) * pic.scale, th = static_cast<int>(set.height) * pic.scale;
  const int rows = 1 + static_cast<int>(pic.layers.size());
  const int legend_h = 22;
  const int width = kLabelWidth + n * (tw + kMargin) + kMargin;
  const int height = kCaptionHeight + rows * (th + kMargin) + kMargin + legend_h;
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar ink(30, 30, 30);
  for (int col = 0; col < n; ++col) {
    const int64_t index = pic.image_indices[col];
    const int x = kLabelWidth + col * (tw + kMargin);
    const int label = set.labels[index];
    std::string caption = label < static_cast<int>(set.class_names.size()) ? set.class_names[label]
                                                                            : std::to_string(label);
    cv::putText(canvas, caption.substr(0, 12), {x, kCaptionHeight - 4}, kFont, kFontScale, ink, 1, cv::LINE_AA);
    for (int row = 0; row < rows; ++row) {
      cv::Mat tile = enlarged(set, index, pic.scale);
      if (row > 0) tint_patches(tile, pic.layers[row - 1], col, pic.tint);
      tile.copyTo(canvas(cv::Rect(x, kCaptionHeight + row * (th + kMargin), tw, th)));
    }
  }
  for (int row = 0; row < rows; ++row) {
    std::string name = row == 0 ? "image" : pic.row_names[row - 1];
    cv::putText(canvas, name, {4, kCaptionHeight + row * (th + kMargin) + th / 2}, kFont, kFontScale, ink, 1,
                cv::LINE_AA);
  }
  int x = kLabelWidth, y = height - legend_h + 4;
  for (int e = 0; e < pic.num_experts && x + 40 < width; ++e) {
    cv::Vec3b c = expert_colour(e);
    cv::rectangle(canvas, cv::Rect(x, y, 12, 12), cv::Scalar(c[0], c[1], c[2]), cv::FILLED);
    cv::putText(canvas, "e" + std::to_string(e), {x + 15, y + 10}, kFont, kFontScale, ink, 1, cv::LINE_AA);
    x += 42;
  }
  return canvas;
}

std::vector<uint8_t> encode_png(const cv::Mat& image) {
  std::vector<uint8_t> bytes;
  MOELAB_CHECK(cv::imencode(".png", image, bytes), "PNG encoding of a " << image.cols << "x" << image.rows
                                                                        << " image failed");
  return bytes;
}

std::string base64_encode(const std::vector<uint8_t>& bytes) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) v |= uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) v |= bytes[i + 2];
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kTable[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kTable[v & 63] : '=';
  }
  return out;
}

void write_png(const std::string& path, const cv::Mat& image) {
  bool ok = false;
  try {
    ok = cv::imwrite(path, image);
  } catch (const cv::Exception& e) {
    MOELAB_FAIL("cannot write PNG " << path << ": " << e.what());
  }
  MOELAB_CHECK(ok, "cannot write PNG " << path);
}

}  // namespace moelab::vision
