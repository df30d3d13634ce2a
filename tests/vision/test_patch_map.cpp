// Per-patch expert maps: one expert per patch for every image, dropped tokens, weights choose the
// top slot, and the rendered picture has the expected size and tints.
#include <gtest/gtest.h>

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "vision/analysis/patch_map.h"

using namespace moelab;
using namespace moelab::vision;

TEST(PatchMap, OneExpertPerPatchForEveryImage) {
  // 3 images, class token + 2x2 patches = 5 tokens, top-2 routing over 4 experts.
  const int64_t b = 3, t = 5, k = 2, grid = 2;
  std::vector<int64_t> ids(b * t * k);
  std::vector<float> w(b * t * k);
  for (int64_t i = 0; i < b * t; ++i) {
    ids[i * k] = i % 4;
    ids[i * k + 1] = (i + 1) % 4;
    w[i * k] = 0.3f;  // the second slot carries more weight for odd tokens
    w[i * k + 1] = (i % 2) ? 0.7f : 0.1f;
  }
  Tensor tid = Tensor::from_vector(ids, {b * t, k});
  Tensor tw = Tensor::from_vector(w, {b * t, k});
  PatchExpertMap m = patch_expert_map(tid, tw, b, t, 1, grid);
  ASSERT_EQ(m.experts.size(), static_cast<size_t>(b * grid * grid));
  for (int64_t img = 0; img < b; ++img)
    for (int64_t p = 0; p < grid * grid; ++p) {
      const int64_t token = img * t + 1 + p;
      const int64_t want = (token % 2) ? (token + 1) % 4 : token % 4;
      EXPECT_EQ(m.at(img, p / grid, p % grid), want) << "image " << img << " patch " << p;
    }
  // Without weights the first slot wins; the (B, T, k) layout reads the same.
  PatchExpertMap first = patch_expert_map(tid.reshape({b, t, k}), Tensor(), b, t, 1, grid);
  EXPECT_EQ(first.at(0, 0, 0), 1);
  EXPECT_EQ(first.at(2, 1, 1), (2 * 5 + 4) % 4);
}

TEST(PatchMap, DroppedTokensAndBadShapes) {
  std::vector<int64_t> ids = {-1, 2, -1, -1, 0, 3, 1, -1};
  Tensor tid = Tensor::from_vector(ids, {4, 2});
  PatchExpertMap m = patch_expert_map(tid, Tensor(), 1, 4, 0, 2);
  EXPECT_EQ(m.experts, (std::vector<int32_t>{2, -1, 0, 1}));
  EXPECT_THROW(patch_expert_map(tid, Tensor(), 1, 3, 0, 2), Error);  // 4 patches do not fit 3 tokens
  EXPECT_THROW(patch_expert_map(tid, Tensor(), 3, 4, 0, 2), Error);  // 8 ids are not 3 x 4 tokens
}

TEST(PatchMap, RenderedPictureHasOneTilePerImageAndLayer) {
  ImageSet set;
  set.count = 2;
  set.height = set.width = 4;
  set.pixels.assign(32, 200);
  set.labels = {0, 1};
  set.num_classes = 2;
  set.class_names = {"a", "b"};
  PatchExpertMap m;
  m.images = 2;
  m.grid = 2;
  m.experts = {0, 1, 2, 3, 3, 2, 1, -1};
  PatchMapPicture pic;
  pic.image_indices = {0, 1};
  pic.row_names = {"block 1"};
  pic.layers = {m};
  pic.num_experts = 4;
  pic.scale = 8;
  cv::Mat img = render_patch_maps(set, pic);
  EXPECT_EQ(img.type(), CV_8UC3);
  EXPECT_GT(img.cols, 2 * 32);
  EXPECT_GT(img.rows, 2 * 32);
  // The centre of image 0's first patch in the layer row is tinted towards expert 0's colour.
  const int x = 70 + 8, y = 16 + (32 + 6) + 8;  // label width, caption height, tile and margin
  cv::Vec3b px = img.at<cv::Vec3b>(y, x), c0 = expert_colour(0);
  for (int ch = 0; ch < 3; ++ch) EXPECT_NEAR(px[ch], 0.55 * 200 + 0.45 * c0[ch], 2) << "channel " << ch;
  // The dropped patch of image 1 stays grey.
  const int x1 = 70 + 32 + 6 + 16 + 8, y1 = y + 16;
  EXPECT_EQ(img.at<cv::Vec3b>(y1, x1), cv::Vec3b(200, 200, 200));
  EXPECT_NE(expert_colour(3), expert_colour(13));
  EXPECT_EQ(expert_colour_hex(0), "#1f77b4");
  auto png = encode_png(img);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png[1], 'P');
  EXPECT_EQ(base64_encode({'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(base64_encode({'M', 'a'}), "TWE=");
  EXPECT_EQ(base64_encode({'M'}), "TQ==");
  const std::string path = (std::filesystem::temp_directory_path() / "moelab_patch_map_test.png").string();
  write_png(path, img);
  cv::Mat back = cv::imread(path);
  EXPECT_EQ(back.cols, img.cols);
  std::filesystem::remove(path);
  EXPECT_THROW(write_png("/nonexistent-dir/x.png", img), Error);
}
