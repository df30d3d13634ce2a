#include "experiments/lib/agent_play.h"

#include <algorithm>
#include <cstdio>
#include <span>

#include <opencv2/imgproc.hpp>

#include "core/util/check.h"
#include "experiments/lib/tasks/rl_agent.h"
#include "rl/envs/render.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

cv::Scalar expert_colour(int64_t e) {
  // Tableau's 10 categorical colours, then repeating: distinct on black and on the games' cubehelix.
  static const int kColours[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                                      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  if (e < 0) return cv::Scalar(255, 255, 255);  // dropped by capacity
  const int* c = kColours[e % 10];
  return cv::Scalar(c[0], c[1], c[2]);
}

cv::Mat render_agent_frame(const uint8_t* obs, int channels, const AgentStep* step, const std::string& tokenization,
                           int cell_pixels) {
  cv::Mat board = rl::render_observation(obs, channels, cell_pixels);
  const int width = board.cols, square = std::max(6, cell_pixels / 2), caption = 2 * square;
  int strips = 0;
  if (step)
    for (const auto& l : step->layers)
      if (!(tokenization == "per_conv" && l.expert.size() == 64)) ++strips;
  const int per_row = std::max(1, width / square);
  int strip_rows = 0;
  if (step)
    for (const auto& l : step->layers)
      if (!(tokenization == "per_conv" && l.expert.size() == 64))
        strip_rows += static_cast<int>((l.expert.size() + per_row - 1) / per_row);
  cv::Mat image(board.rows + caption + strip_rows * square + strips * 2, width, CV_8UC3, cv::Scalar(0, 0, 0));
  board.copyTo(image(cv::Rect(0, 0, width, board.rows)));
  if (!step) return image;
  int y = board.rows;
  for (const auto& l : step->layers) {
    if (tokenization == "per_conv" && l.expert.size() == 64) {
      // Conv position (i, j) covers cells i..i+2, j..j+2: frame its centre cell (i+1, j+1).
      const int border = std::max(2, cell_pixels / 10);
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j)
          cv::rectangle(image, cv::Rect((j + 1) * cell_pixels, (i + 1) * cell_pixels, cell_pixels, cell_pixels),
                        expert_colour(l.expert[static_cast<size_t>(i * 8 + j)]), border);
      continue;
    }
    for (size_t k = 0; k < l.expert.size(); ++k) {
      const int row = static_cast<int>(k) / per_row, col = static_cast<int>(k) % per_row;
      cv::rectangle(image, cv::Rect(col * square, y + row * square, square - 1, square - 1), expert_colour(l.expert[k]),
                    cv::FILLED);
    }
    y += static_cast<int>((l.expert.size() + per_row - 1) / per_row) * square + 2;
  }
  char text[96];
  std::snprintf(text, sizeof text, "t %lld  a %d  R %g", static_cast<long long>(step->t), step->env_action, step->return_before);
  cv::putText(image, text, cv::Point(4, y + caption - square / 2), cv::FONT_HERSHEY_SIMPLEX, square / 20.0,
              cv::Scalar(230, 230, 230), 1, cv::LINE_AA);
  return image;
}

AgentEpisode play_agent(const fs::path& run_dir, const AgentPlayOptions& options,
                        const std::function<void(const AgentStep&, const uint8_t*, int)>& on_step) {
  // The network, environment settings and encoding exactly as training built them (rl_agent.h).
  const RlAgent agent = load_rl_agent(run_dir, options.checkpoint);
  const RlEnvSettings& env = agent.env;
  std::vector<std::string> trained;
  for (rl::GameId g : env.games) trained.emplace_back(rl::game_info(g).name);
  rl::GameId game = env.games.front();
  if (!options.game.empty()) {
    const rl::GameId wanted = rl::game_id_from_name(options.game);
    auto it = std::find(env.games.begin(), env.games.end(), wanted);
    std::string names;
    for (const auto& n : trained) names += (names.empty() ? "" : ", ") + n;
    MOELAB_CHECK(it != env.games.end(), run_dir.string() << " was trained on " << names << ", not " << options.game);
    game = wanted;
  }

  rl::VectorEnv venv(vector_env_config(env, game, 1, options.seed, 1));
  venv.reset();
  AgentEpisode ep;
  ep.game = rl::game_info(game).name;
  ep.protocol = env.protocol;
  ep.tokenization = agent.cfg.get_string("model.tokenization");
  ep.checkpoint_step = agent.step;
  std::unique_ptr<rl::VideoRecorder> video;
  const int A = agent.encoder->num_actions(), C = venv.channels();
  rl::EpsilonGreedy explore(options.seed, "play");
  moe::RoutingLog routing(true);  // keeps each layer's latest record: this step's choices
  std::vector<uint8_t> obs;
  if (!options.frames_dir.empty()) fs::create_directories(options.frames_dir);
  auto add_frame = [&](const uint8_t* o, const AgentStep* s) {
    if (options.video_path.empty() && options.frames_dir.empty()) return;
    cv::Mat frame = render_agent_frame(o, C, s, ep.tokenization, options.cell_pixels);
    if (!options.frames_dir.empty()) {
      char name[32];
      std::snprintf(name, sizeof name, "frame_%05lld.png", static_cast<long long>(ep.video_frames));
      rl::write_png((fs::path(options.frames_dir) / name).string(), frame);
    }
    ++ep.video_frames;
    if (options.video_path.empty()) return;
    if (!video) video = std::make_unique<rl::VideoRecorder>(options.video_path, options.fps, frame.cols, frame.rows);
    video->add_frame(frame);
  };
  for (int64_t t = 0; t < options.max_steps && !ep.ended; ++t) {
    obs.assign(venv.observations(), venv.observations() + venv.observation_size());
    AgentStep step;
    step.t = t;
    step.return_before = ep.episode_return;
    step.tokenization = ep.tokenization;
    step.q = agent.q_values(game, obs.data(), 1, &routing);
    MOELAB_CHECK(static_cast<int>(step.q.size()) == A, "the network gave " << step.q.size() << " Q-values for " << A << " actions");
    explore.select(step.q.data(), 1, A, options.epsilon, &step.action);
    step.env_action = agent.env_action(game, step.action);
    for (const auto& [path, tally] : routing.layers()) {
      const moe::RoutingRecord* rec = routing.record(path);
      if (!rec) continue;
      step.layers.push_back({path, tally.num_experts, moe::top_expert_per_token(*rec)});
    }
    if (on_step) on_step(step, obs.data(), C);
    add_frame(obs.data(), &step);
    venv.step(std::span<const int>(&step.env_action, 1));
    step.reward = venv.rewards()[0];
    step.done = venv.terminated()[0] || venv.truncated()[0];
    ep.episode_return += step.reward;
    ep.steps = t + 1;
    ep.ended = step.done;
    for (const auto& l : step.layers) {
      auto it = std::find_if(ep.expert_tokens.begin(), ep.expert_tokens.end(), [&](const auto& p) { return p.first == l.path; });
      if (it == ep.expert_tokens.end()) {
        ep.expert_tokens.emplace_back(l.path, std::vector<int64_t>(static_cast<size_t>(l.num_experts), 0));
        it = ep.expert_tokens.end() - 1;
      }
      for (int64_t e : l.expert)
        if (e >= 0 && e < l.num_experts) ++it->second[static_cast<size_t>(e)];
    }
  }
  // The last board: the episode's final observation when it ended (the env has already reset).
  add_frame(ep.ended ? venv.final_observations() : venv.observations(), nullptr);
  if (video) video->close();
  return ep;
}

}  // namespace moelab::experiments
