// Shared pieces of the RL tasks: env/model/eval keys, protocol checks at the key, observation encoding,
// greedy evaluation, byte blobs for checkpoints.
#include "experiments/lib/tasks/rl_agent.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/autograd/autograd.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/run_config.h"

namespace moelab::experiments {

namespace {

std::vector<std::string> game_names(bool allow_all) {
  std::vector<std::string> names;
  for (rl::GameId g : rl::all_games()) names.emplace_back(rl::game_info(g).name);
  if (allow_all) names.emplace_back("all");
  return names;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

void declare_rl_env_keys(Schema& s, const std::string& default_protocol, int64_t default_envs, bool allow_all) {
  s.add_section("env", "the MinAtar games (rl/envs) and the protocol preset (docs/minatar.md §2)");
  s.add_choice("env.game", "breakout", game_names(allow_all),
               allow_all ? "the game, or \"all\": one network for the five games (multi-game)" : "the game");
  s.add_choice("env.protocol", default_protocol, {"paper", "gymnax", "custom"},
               "paper (6 actions, sticky 0.1, no time limit), gymnax (minimal actions, no stickiness, 1000 steps, "
               "Freeway 2500) or custom (the env.* keys below decide)");
  // No defaults: a named preset sets these, so a value given must agree with it (custom: paper's values).
  s.add_float("env.sticky_action_prob", 0.1, "sticky-action probability (set by a named preset: a value that differs "
                                             "is an error; custom default 0.1)").range(0, 1).no_default();
  s.add_int("env.time_limit", 0, "truncate episodes after this many steps, 0: none (set by a named preset; custom "
                                 "default 0)").at_least(0).no_default();
  s.add_bool("env.minimal_action_set", false, "each game's minimal action set (set by a named preset; custom default "
                                              "false; multi-game always uses the 6 actions)").no_default();
  s.add_bool("env.ramping", true, "difficulty ramping");
  s.add_int("env.num_envs", default_envs, "environments stepped together (per game)").range(1, 65536);
  s.add_int("env.threads", 1, "threads stepping the environments (results do not depend on it)").range(1, 256);
  s.add_bool("env.game_id_input", false, "multi-game: append one constant plane per game to the observation");
  s.add_check([](const Config& c, io::ConfigReporter& r) {
    const std::string protocol = c.get_string("env.protocol");
    const bool multi = c.get_string("env.game") == "all";
    auto is_explicit = [&](const char* key) { return c.has(key); };
    if (multi && is_explicit("env.minimal_action_set") && c.get_bool("env.minimal_action_set"))
      r.error("env.minimal_action_set", "env.minimal_action_set = true contradicts env.game = \"all\": one network "
                                        "for the five games acts in the common 6-action set");
    if (!multi && c.get_bool("env.game_id_input"))
      r.error("env.game_id_input", "env.game_id_input needs env.game = \"all\" (multi-game)");
    if (protocol == "custom") return;
    const rl::ProtocolPreset& p = rl::protocol_preset(protocol);
    auto conflict = [&](const char* key, const std::string& value, const std::string& preset_value) {
      r.error(key, std::string(key) + " = " + value + " contradicts env.protocol = \"" + protocol + "\", which sets " +
                       preset_value + "; remove the key, or use env.protocol = \"custom\"");
    };
    if (is_explicit("env.sticky_action_prob") && c.get_float("env.sticky_action_prob") != p.sticky_action_prob)
      conflict("env.sticky_action_prob", fmt(c.get_float("env.sticky_action_prob")), fmt(p.sticky_action_prob));
    if (is_explicit("env.time_limit") && c.get_int("env.time_limit") != p.time_limit)
      conflict("env.time_limit", std::to_string(c.get_int("env.time_limit")),
               std::to_string(p.time_limit) + (p.freeway_time_limit ? " (Freeway " + std::to_string(p.freeway_time_limit) + ")" : ""));
    if (!multi && is_explicit("env.minimal_action_set") && c.get_bool("env.minimal_action_set") != p.minimal_action_set)
      conflict("env.minimal_action_set", c.get_bool("env.minimal_action_set") ? "true" : "false",
               p.minimal_action_set ? "true" : "false");
  });
}

void declare_q_network_keys(Schema& s, bool default_layer_norm) {
  s.add_section("model", "the Q-network: Conv 3x3 -> ReLU -> penultimate layer -> ReLU -> actions (rl/agents/q_network.h)");
  s.add_int("model.conv_channels", 16, "conv output channels").range(1, 1024);
  s.add_int("model.hidden", 128, "dense width; each expert's hidden width unless model.moe.expert_d_ff").range(1, 65536);
  s.add_bool("model.layer_norm", default_layer_norm, "LayerNorm after the conv (over channels) and the penultimate layer (PQN)");
  s.add_choice("model.penultimate", "dense", {"dense", "moe", "scaled_expert", "wide_dense"},
               "dense; moe (model.moe.* over tokens); scaled_expert (one expert num_experts times wider); "
               "wide_dense (a dense layer with the moe network's parameter count)");
  s.add_choice("model.tokenization", "per_conv", {"per_conv", "per_feat", "per_samp"},
               "tokens for moe / scaled_expert: per_conv (64 tokens of C'), per_feat (C' tokens of 64), per_samp (1 token)");
  declare_moe_config(s, 0);
}

void declare_rl_eval_keys(Schema& s) {
  s.add_section("eval", "greedy evaluation episodes at every evaluation (train.eval_every / train.eval_every_frames)");
  s.add_int("eval.episodes", 32, "episodes per game (one per environment, played to their end)").range(1, 4096);
  s.add_float("eval.epsilon", 0.0, "exploration while evaluating (0: greedy)").range(0, 1);
  s.add_int("eval.max_steps", 10000, "stop an evaluation episode after this many steps (its return so far counts)").at_least(1);
}

RlEnvSettings rl_env_settings(const Config& cfg) {
  RlEnvSettings s;
  const std::string game = cfg.get_string("env.game");
  s.multi_game = game == "all";
  if (s.multi_game) s.games.assign(rl::all_games().begin(), rl::all_games().end());
  else s.games = {rl::game_id_from_name(game)};
  s.protocol = cfg.get_string("env.protocol");
  if (s.protocol == "custom") {
    s.sticky_action_prob = cfg.has("env.sticky_action_prob") ? cfg.get_float("env.sticky_action_prob") : 0.1;
    s.time_limit = cfg.has("env.time_limit") ? static_cast<int>(cfg.get_int("env.time_limit")) : 0;
    s.minimal_action_set = cfg.has("env.minimal_action_set") && cfg.get_bool("env.minimal_action_set");
  } else {
    const rl::ProtocolPreset& p = rl::protocol_preset(s.protocol);
    s.sticky_action_prob = p.sticky_action_prob;
    s.time_limit = p.time_limit;
    s.gymnax_freeway_limit = p.freeway_time_limit != p.time_limit;
    s.minimal_action_set = p.minimal_action_set;
  }
  if (s.multi_game) s.minimal_action_set = false;
  s.ramping = cfg.get_bool("env.ramping");
  s.num_envs = static_cast<int>(cfg.get_int("env.num_envs"));
  s.threads = static_cast<int>(cfg.get_int("env.threads"));
  s.game_id_input = cfg.get_bool("env.game_id_input");
  return s;
}

rl::VectorEnvConfig vector_env_config(const RlEnvSettings& s, rl::GameId game, int num_envs, uint32_t seed, int threads) {
  rl::VectorEnvConfig c;
  c.game = game;
  c.num_envs = num_envs;
  c.protocol = s.protocol;
  c.minimal_action_set = s.minimal_action_set;
  c.sticky_action_prob = s.sticky_action_prob;
  c.time_limit = s.time_limit;
  if (s.gymnax_freeway_limit && game == rl::GameId::kFreeway)
    c.time_limit = rl::protocol_preset(s.protocol).freeway_time_limit;
  c.difficulty_ramping = s.ramping;
  c.seed = seed;
  c.num_threads = std::min(threads, num_envs);
  return c;
}

uint32_t env_seed(uint64_t seed, const std::string& purpose) {
  RngStream rng(seed, "env." + purpose);
  return static_cast<uint32_t>(rng.below(uint64_t{1} << 31));
}

ObservationEncoder::ObservationEncoder(const RlEnvSettings& s) : multi_(s.multi_game) {
  layout_.game_id_one_hot = s.game_id_input;
  if (multi_) {
    channels_ = layout_.channels();
    num_actions_ = rl::kNumActions;
  } else {
    channels_ = rl::game_channels(s.games[0]);
    num_actions_ = s.minimal_action_set ? static_cast<int>(rl::game_info(s.games[0]).minimal_actions.size()) : rl::kNumActions;
  }
}

void ObservationEncoder::append(rl::GameId game, const uint8_t* obs, int n, std::vector<uint8_t>& out) const {
  const size_t at = out.size(), size = static_cast<size_t>(n) * rl::obs_size(channels_);
  out.resize(at + size);
  if (multi_) rl::embed_observations(game, obs, n, layout_, out.data() + at);
  else std::memcpy(out.data() + at, obs, size);
}

Tensor ObservationEncoder::to_tensor(const std::vector<uint8_t>& bytes, int n, Device device) const {
  return rl::observations_to_tensor(bytes.data(), n, channels_, rl::TensorLayout::nchw, 1.0f, device);
}

rl::QNetworkOptions q_network_options(const Config& cfg, int in_channels, int num_actions) {
  rl::QNetworkOptions o;
  o.in_channels = in_channels;
  o.num_actions = num_actions;
  o.conv_channels = cfg.get_int("model.conv_channels");
  o.hidden = cfg.get_int("model.hidden");
  o.layer_norm = cfg.get_bool("model.layer_norm");
  o.penultimate = rl::parse_penultimate(cfg.get_string("model.penultimate"));
  o.tokenization = rl::parse_tokenization(cfg.get_string("model.tokenization"));
  o.moe = moe_config_from(cfg);
  return o;
}

void select_actions(rl::EpsilonGreedy& explore, const std::vector<float>& q, int row0, int n, int num_actions,
                    double epsilon, int* actions) {
  explore.select(q.data() + static_cast<size_t>(row0) * num_actions, n, num_actions, epsilon, actions);
}

EvalResult evaluate_greedy(EvalContext& ec, const Config& cfg, const RlEnvSettings& s, const ObservationEncoder& enc,
                           uint64_t seed) {
  const int n = static_cast<int>(cfg.get_int("eval.episodes"));
  const double epsilon = cfg.get_float("eval.epsilon");
  const int64_t max_steps = cfg.get_int("eval.max_steps");
  const int A = enc.num_actions();
  rl::EpsilonGreedy explore(seed, "eval.explore");
  EvalResult out;
  double sum_over_games = 0, length_sum = 0;
  for (size_t gi = 0; gi < s.games.size(); ++gi) {
    const rl::GameId game = s.games[gi];
    rl::VectorEnv venv(vector_env_config(s, game, n, env_seed(seed, "eval." + std::string(rl::game_info(game).name)), s.threads));
    venv.reset();
    std::vector<double> returns(n, 0.0);
    std::vector<int64_t> lengths(n, 0);
    std::vector<uint8_t> done(n, 0), bytes;
    std::vector<int> actions(n), env_actions(n);
    int remaining = n;
    nn::Batch batch;
    batch.labels = Tensor::from_vector(std::vector<int64_t>(n, static_cast<int64_t>(gi)), Shape{n});
    for (int64_t t = 0; t < max_steps && remaining > 0; ++t) {
      bytes.clear();
      enc.append(game, venv.observations(), n, bytes);
      batch.images = enc.to_tensor(bytes, n, ec.device);
      const std::vector<float> q =
          ec.run(batch, [&](nn::ForwardContext& ctx) { return ec.model.forward(batch.images, ctx); }).to_vector<float>();
      select_actions(explore, q, 0, n, A, epsilon, actions.data());
      for (int i = 0; i < n; ++i) env_actions[i] = s.multi_game ? rl::env_action(game, actions[i], false) : actions[i];
      venv.step(env_actions);
      for (int i = 0; i < n; ++i) {
        if (done[i]) continue;
        returns[i] += venv.rewards()[i];
        lengths[i] += 1;
        if (venv.terminated()[i] || venv.truncated()[i]) {
          done[i] = 1;
          --remaining;
        }
      }
    }
    const double mean = std::accumulate(returns.begin(), returns.end(), 0.0) / n;
    out.metrics["eval/return/" + std::string(rl::game_info(game).name)] = mean;
    sum_over_games += mean;
    length_sum += static_cast<double>(std::accumulate(lengths.begin(), lengths.end(), int64_t{0})) / n;
  }
  const double games = static_cast<double>(s.games.size());
  out.metrics["eval/return"] = sum_over_games / games;
  out.metrics["eval/episode_length"] = length_sum / games;
  return out;
}

std::vector<std::string> game_label_names(const RlEnvSettings& s) {
  std::vector<std::string> names;
  if (s.multi_game)
    for (rl::GameId g : s.games) names.emplace_back(rl::game_info(g).name);
  return names;
}

Tensor bytes_to_tensor(const std::vector<uint8_t>& bytes) {
  std::vector<int32_t> words((bytes.size() + 3) / 4 + 2, 0);
  const uint64_t n = bytes.size();
  std::memcpy(words.data(), &n, sizeof n);
  if (!bytes.empty()) std::memcpy(words.data() + 2, bytes.data(), bytes.size());
  return Tensor::from_vector(words, Shape{static_cast<int64_t>(words.size())});
}

std::vector<uint8_t> tensor_to_bytes(const Tensor& t) {
  const std::vector<int32_t> words = t.to_vector<int32_t>();
  MOELAB_CHECK(words.size() >= 2, "a byte blob tensor needs at least 2 words, got " << words.size());
  uint64_t n = 0;
  std::memcpy(&n, words.data(), sizeof n);
  MOELAB_CHECK(n <= (words.size() - 2) * 4, "a byte blob tensor claims " << n << " bytes but holds " << (words.size() - 2) * 4);
  std::vector<uint8_t> bytes(n);
  if (n) std::memcpy(bytes.data(), words.data() + 2, n);
  return bytes;
}

std::vector<float> RlAgent::q_values(rl::GameId game, const uint8_t* obs, int n, moe::RoutingLog* routing) const {
  NoGradGuard no_grad;
  std::vector<uint8_t> bytes;
  encoder->append(game, obs, n, bytes);
  nn::Batch b;
  b.images = encoder->to_tensor(bytes, n, Device::cpu());
  int64_t label = 0;
  for (size_t i = 0; i < env.games.size(); ++i)
    if (env.games[i] == game) label = static_cast<int64_t>(i);
  b.labels = Tensor::from_vector(std::vector<int64_t>(n, label), Shape{n});
  nn::ForwardContext ctx(b, step, nn::evaluation_draw_key(seed, step));
  ctx.routing = routing;
  return network->forward(b.images, ctx).to_vector<float>();
}

RlAgent load_rl_agent(const std::filesystem::path& run_dir, std::optional<int64_t> step) {
  const std::filesystem::path config_path = run_dir / "config.toml";
  MOELAB_CHECK(std::filesystem::exists(config_path), run_dir.string() << " has no config.toml: is it a moelab run directory?");
  RlAgent agent;
  agent.cfg = load_run_config(config_path.string(), {});
  const std::string task = agent.cfg.get_string("task");
  MOELAB_CHECK(task == "dqn" || task == "pqn", run_dir.string() << " is a run of task " << task << ", not an RL agent (dqn, pqn)");
  const CheckpointInfo info = checkpoint_or_latest(run_dir, step);
  agent.step = info.step;
  agent.seed = static_cast<uint64_t>(agent.cfg.get_int("seed"));
  agent.env = rl_env_settings(agent.cfg);
  agent.encoder = std::make_shared<ObservationEncoder>(agent.env);
  RngStream init(agent.seed, "init");
  agent.network = std::make_shared<rl::QNetwork>(
      q_network_options(agent.cfg, agent.encoder->channels(), agent.encoder->num_actions()), init);
  const CheckpointData d = read_checkpoint(info);
  load_model_state(*agent.network, d, info);
  agent.network->eval();
  return agent;
}

}  // namespace moelab::experiments
