#pragma once
// Pictures of observations: one colour per channel (matplotlib's cubehelix, as MinAtar's own display),
// black background, the highest channel present wins a cell, each cell scaled to a square of pixels.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include "rl/envs/game.h"

namespace moelab::rl {

// Colour of channel c among `channels`, RGB 0..255.
std::array<uint8_t, 3> channel_colour(int c, int channels);
// obs: (10, 10, C) -> RGB image (10 * cell_pixels, 10 * cell_pixels), CV_8UC3 in R, G, B order.
cv::Mat render_observation(const uint8_t* obs, int channels, int cell_pixels = 32);
// Writes an RGB image as PNG; throws std::runtime_error naming the path when it cannot.
void write_png(const std::string& path, const cv::Mat& rgb);

// An episode video: .mp4 (mp4v) or .avi (MJPG), chosen by the file extension.
class VideoRecorder {
 public:
  VideoRecorder(const std::string& path, double fps, int width, int height);
  void add_frame(const cv::Mat& rgb);
  int frames() const { return frames_; }
  void close();

 private:
  std::string path_;
  cv::VideoWriter writer_;
  int width_, height_, frames_ = 0;
};

struct RecordOptions {
  GameId game = GameId::kBreakout;
  uint32_t seed = 0;
  double sticky_action_prob = 0.1;
  bool difficulty_ramping = true;
  int max_steps = 1000;        // stop after this many steps even if the episode goes on
  int cell_pixels = 32;
  double fps = 10;
  std::string frames_dir;      // PNG frames frame_00000.png ... (empty: none)
  std::string video_path;      // .mp4 or .avi (empty: none)
};
struct RecordSummary {
  int steps = 0;
  int episode_return = 0;
  bool terminal = false;
};
// Plays one episode with `policy(step) -> action` (0..5) from reset and writes its frames and/or video.
RecordSummary record_episode(const RecordOptions& options, const std::function<int(int)>& policy);

}  // namespace moelab::rl
