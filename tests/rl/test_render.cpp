// Rendering: observation -> RGB image, PNG frames, episode videos, terminal frames and keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "rl/envs/environment.h"
#include "rl/envs/render.h"
#include "rl/envs/terminal_play.h"

using namespace moelab::rl;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("moelab_rl_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}
cv::Vec3b pixel(const cv::Mat& image, int cell_y, int cell_x, int cell) {
  return image.at<cv::Vec3b>(cell_y * cell + cell / 2, cell_x * cell + cell / 2);
}
}  // namespace

TEST(Render, DistinctChannelColoursAndHighestChannelWins) {
  for (GameId game : all_games()) {
    const int channels = game_channels(game);
    std::set<std::array<uint8_t, 3>> colours;
    for (int c = 0; c < channels; ++c) {
      const auto colour = channel_colour(c, channels);
      EXPECT_NE(colour, (std::array<uint8_t, 3>{0, 0, 0})) << "black is the background";
      colours.insert(colour);
    }
    EXPECT_EQ(static_cast<int>(colours.size()), channels) << game_info(game).name;
  }
  std::vector<uint8_t> obs(obs_size(4), 0);
  obs[obs_index(2, 3, 1, 4)] = 1;
  obs[obs_index(5, 5, 0, 4)] = 1;
  obs[obs_index(5, 5, 3, 4)] = 1;
  const cv::Mat image = render_observation(obs.data(), 4, 8);
  ASSERT_EQ(image.rows, 80);
  ASSERT_EQ(image.cols, 80);
  const auto c1 = channel_colour(1, 4), c3 = channel_colour(3, 4);
  EXPECT_EQ(pixel(image, 2, 3, 8), cv::Vec3b(c1[0], c1[1], c1[2]));
  EXPECT_EQ(pixel(image, 5, 5, 8), cv::Vec3b(c3[0], c3[1], c3[2]));
  EXPECT_EQ(pixel(image, 0, 0, 8), cv::Vec3b(0, 0, 0));
}

TEST(Render, PngRoundTripKeepsRgbOrder) {
  const fs::path dir = temp_dir("png");
  std::vector<uint8_t> obs(obs_size(6), 0);
  obs[obs_index(9, 5, 0, 6)] = 1;
  const cv::Mat rgb = render_observation(obs.data(), 6, 4);
  write_png((dir / "frame.png").string(), rgb);
  const cv::Mat bgr = cv::imread((dir / "frame.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  const auto c0 = channel_colour(0, 6);
  EXPECT_EQ(bgr.at<cv::Vec3b>(9 * 4 + 2, 5 * 4 + 2), cv::Vec3b(c0[2], c0[1], c0[0]));
  EXPECT_THROW(write_png((dir / "missing" / "x.png").string(), rgb), std::runtime_error);
  fs::remove_all(dir);
}

TEST(Render, RecordEpisodeWritesFramesAndVideo) {
  const fs::path dir = temp_dir("video");
  RecordOptions options;
  options.game = GameId::kBreakout;
  options.seed = 3;
  options.max_steps = 30;
  options.cell_pixels = 8;
  options.frames_dir = (dir / "frames").string();
  options.video_path = (dir / "episode.avi").string();
  const RecordSummary summary = record_episode(options, [](int step) { return step % 3 == 0 ? kLeft : kRight; });
  EXPECT_GT(summary.steps, 0);
  EXPECT_LE(summary.steps, 30);
  int frames = 0;
  for (const auto& entry : fs::directory_iterator(dir / "frames")) frames += entry.path().extension() == ".png";
  EXPECT_EQ(frames, summary.steps + 1) << "the reset frame plus one per step";
  ASSERT_TRUE(fs::exists(dir / "episode.avi"));
  cv::VideoCapture capture((dir / "episode.avi").string());
  ASSERT_TRUE(capture.isOpened());
  int read = 0;
  for (cv::Mat frame; capture.read(frame);) {
    EXPECT_EQ(frame.cols, 80);
    ++read;
  }
  EXPECT_EQ(read, summary.steps + 1);
  EXPECT_THROW(VideoRecorder((dir / "x.gif").string(), 10, 80, 80), std::invalid_argument);
  fs::remove_all(dir);
}

TEST(Render, Mp4VideoInANewDirectory) {
  const fs::path dir = temp_dir("mp4");
  RecordOptions options;
  options.game = GameId::kSeaquest;
  options.seed = 1;
  options.max_steps = 12;
  options.cell_pixels = 16;
  options.video_path = (dir / "new" / "episode.mp4").string();
  const RecordSummary summary = record_episode(options, [](int step) { return step < 3 ? kDown : kFire; });
  cv::VideoCapture capture(options.video_path);
  ASSERT_TRUE(capture.isOpened());
  int read = 0;
  for (cv::Mat frame; capture.read(frame);) {
    EXPECT_EQ(frame.cols, 160);
    ++read;
  }
  EXPECT_EQ(read, summary.steps + 1);
  fs::remove_all(dir);
}

TEST(Terminal, DecodesArrowsSpaceAndCommands) {
  const auto events = decode_keys("\x1b[A\x1b[B\x1b[C\x1b[D \x1bOAqpr?n");
  ASSERT_EQ(events.size(), 10u);
  const int expected_actions[] = {kUp, kDown, kRight, kLeft, kFire, kUp};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(events[i].command, KeyCommand::kAction);
    EXPECT_EQ(events[i].action, expected_actions[i]) << i;
  }
  EXPECT_EQ(events[6].command, KeyCommand::kQuit);
  EXPECT_EQ(events[7].command, KeyCommand::kPause);
  EXPECT_EQ(events[8].command, KeyCommand::kRestart);
  EXPECT_EQ(events[9].action, kNoop);
}

TEST(Terminal, AnsiFrameHasTenRowsOfTenCells) {
  Environment env(GameId::kSpaceInvaders, {0.0, true, 1u});
  const auto obs = env.observation();
  const std::string frame = ansi_frame(obs.data(), env.channels());
  int rows = 0, cells = 0;
  for (char ch : frame) rows += ch == '\n';
  for (size_t pos = frame.find("\x1b[48;2;"); pos != std::string::npos; pos = frame.find("\x1b[48;2;", pos + 1)) ++cells;
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(cells, 100);
}
