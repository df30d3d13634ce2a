#include "rl/envs/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "rl/envs/environment.h"

namespace moelab::rl {

std::array<uint8_t, 3> channel_colour(int c, int channels) {
  // matplotlib cubehelix (gamma 1, start 0.5, rotation -1.5, hue 1) sampled as seaborn's
  // color_palette("cubehelix", C) does: at (c + 1) / (C + 1).
  const double x = static_cast<double>(c + 1) / (channels + 1);
  const double amplitude = x * (1 - x) / 2;
  const double phi = 2 * M_PI * (0.5 / 3 + -1.5 * x);
  const double rgb[3] = {x + amplitude * (-0.14861 * std::cos(phi) + 1.78277 * std::sin(phi)),
                         x + amplitude * (-0.29227 * std::cos(phi) - 0.90649 * std::sin(phi)),
                         x + amplitude * (1.97294 * std::cos(phi))};
  std::array<uint8_t, 3> out;
  for (int i = 0; i < 3; ++i) out[i] = static_cast<uint8_t>(std::lround(std::clamp(rgb[i], 0.0, 1.0) * 255));
  return out;
}

cv::Mat render_observation(const uint8_t* obs, int channels, int cell_pixels) {
  if (cell_pixels < 1) throw std::invalid_argument("render_observation: cell_pixels must be >= 1");
  std::vector<std::array<uint8_t, 3>> palette(channels);
  for (int c = 0; c < channels; ++c) palette[c] = channel_colour(c, channels);
  cv::Mat image(kGridSize * cell_pixels, kGridSize * cell_pixels, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int y = 0; y < kGridSize; ++y) {
    for (int x = 0; x < kGridSize; ++x) {
      int top = -1;
      for (int c = 0; c < channels; ++c)
        if (obs[obs_index(y, x, c, channels)]) top = c;
      if (top < 0) continue;
      const auto& colour = palette[top];
      cv::rectangle(image, cv::Rect(x * cell_pixels, y * cell_pixels, cell_pixels, cell_pixels),
                    cv::Scalar(colour[0], colour[1], colour[2]), cv::FILLED);
    }
  }
  return image;
}

void write_png(const std::string& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path, bgr)) throw std::runtime_error("write_png: cannot write '" + path + "'");
}

VideoRecorder::VideoRecorder(const std::string& path, double fps, int width, int height)
    : path_(path), width_(width), height_(height) {
  const std::filesystem::path file(path);
  const std::string ext = file.extension().string();
  int fourcc, backend;
  // AVI/MJPG uses OpenCV's own encoder (always built in); MP4 goes through FFmpeg.
  if (ext == ".mp4") {
    fourcc = cv::VideoWriter::fourcc('m', 'p', '4', 'v');
    backend = cv::CAP_FFMPEG;
  } else if (ext == ".avi") {
    fourcc = cv::VideoWriter::fourcc('M', 'J', 'P', 'G');
    backend = cv::CAP_OPENCV_MJPEG;
  } else {
    throw std::invalid_argument("VideoRecorder: '" + path + "' must end in .mp4 or .avi");
  }
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  if (!writer_.open(path, backend, fourcc, fps, cv::Size(width, height), true)) {
    throw std::runtime_error("VideoRecorder: OpenCV cannot open '" + path + "' for writing (codec " +
                             (ext == ".mp4" ? "mp4v" : "MJPG") + "); try the other container");
  }
}

void VideoRecorder::add_frame(const cv::Mat& rgb) {
  if (rgb.cols != width_ || rgb.rows != height_) throw std::invalid_argument("VideoRecorder: frame size differs from the video's");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  writer_.write(bgr);
  ++frames_;
}

void VideoRecorder::close() { writer_.release(); }

RecordSummary record_episode(const RecordOptions& options, const std::function<int(int)>& policy) {
  Environment env(options.game, {options.sticky_action_prob, options.difficulty_ramping, options.seed});
  std::vector<uint8_t> obs(env.observation_size());
  const int side = kGridSize * options.cell_pixels;
  std::unique_ptr<VideoRecorder> video;
  if (!options.video_path.empty()) video = std::make_unique<VideoRecorder>(options.video_path, options.fps, side, side);
  if (!options.frames_dir.empty()) std::filesystem::create_directories(options.frames_dir);
  int frame = 0;
  auto emit = [&] {
    env.observe(obs.data());
    const cv::Mat image = render_observation(obs.data(), env.channels(), options.cell_pixels);
    if (video) video->add_frame(image);
    if (!options.frames_dir.empty()) {
      char name[32];
      std::snprintf(name, sizeof(name), "frame_%05d.png", frame);
      write_png((std::filesystem::path(options.frames_dir) / name).string(), image);
    }
    ++frame;
  };
  RecordSummary summary;
  emit();
  while (summary.steps < options.max_steps && !summary.terminal) {
    const StepResult result = env.act(policy(summary.steps));
    summary.episode_return += result.reward;
    summary.terminal = result.terminal;
    ++summary.steps;
    emit();
  }
  if (video) video->close();
  return summary;
}

}  // namespace moelab::rl
