// Task `pqn`: Parallel Q-learning (Gallici et al., ICLR 2025; purejaxql's MinAtar settings, docs/rl.md):
// env.num_envs environments x agent.num_steps steps per rollout, lambda-returns from the acting-time
// Q-values, agent.epochs x agent.minibatches gradient steps per rollout, epsilon-greedy decaying over the
// first agent.epsilon_fraction of the rollouts. One Trainer step is one minibatch; the rollout is collected
// by next_batch when a new one is due, so budgets in train.frames and the linear lr decay count steps.
// env.game = "all" trains one network on the five games with mixed minibatches (the game is the routing label).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/tasks/rl_agent.h"
#include "rl/agents/exploration.h"
#include "rl/agents/rollout.h"
#include "rl/agents/targets.h"

namespace moelab::experiments {
namespace {

class PqnTask : public Task {
 public:
  void declare_config(Schema& s) const override {
    declare_rl_env_keys(s, "gymnax", 128, true);
    s.add_section("agent", "PQN (purejaxql pqn_minatar)");
    s.add_int("agent.num_steps", 32, "steps of every environment per rollout").range(1, 100000);
    s.add_int("agent.epochs", 2, "passes over each rollout").range(1, 1000);
    s.add_int("agent.minibatches", 32, "minibatches per pass (must divide num_envs x num_steps)").range(1, 100000);
    s.add_float("agent.gamma", 0.99, "discount").range(0, 1);
    s.add_float("agent.lambda", 0.65, "lambda of the lambda-returns").range(0, 1);
    s.add_float("agent.epsilon_start", 1.0, "exploration at the first rollout").range(0, 1);
    s.add_float("agent.epsilon_end", 0.05, "exploration after the decay").range(0, 1);
    s.add_float("agent.epsilon_fraction", 0.1, "fraction of the rollouts over which epsilon decays").greater_than(0).at_most(1);
    s.add_bool("agent.truncation_bootstraps", true,
               "a time-limit truncation bootstraps from the true last observation (false: treated as termination, as purejaxql)");
    declare_q_network_keys(s, true);
    declare_rl_eval_keys(s);
    s.add_check([](const Config& c, io::ConfigReporter& r) {
      const int64_t n = c.get_int("env.num_envs") * c.get_int("agent.num_steps"), m = c.get_int("agent.minibatches");
      if (n % m != 0)
        r.error("agent.minibatches", "agent.minibatches = " + std::to_string(m) + " does not divide env.num_envs x agent.num_steps = " +
                                         std::to_string(n));
      if (c.get_int("train.grad_accum") != 1) r.error("train.grad_accum", "the pqn task takes one minibatch per step: train.grad_accum must be 1");
    });
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    cfg_ = cfg;
    seed_ = ctx.seed;
    device_ = ctx.device;
    env_ = rl_env_settings(cfg);
    encoder_ = std::make_unique<ObservationEncoder>(env_);
    N_ = env_.num_envs;
    T_ = static_cast<int>(cfg.get_int("agent.num_steps"));
    M_ = static_cast<int>(cfg.get_int("agent.minibatches"));
    steps_per_rollout_ = cfg.get_int("agent.epochs") * M_;
    const int64_t frames_per_rollout = static_cast<int64_t>(N_) * T_ * static_cast<int64_t>(env_.games.size());
    frames_per_step_ = std::max<int64_t>(1, frames_per_rollout / steps_per_rollout_);
    for (rl::GameId g : env_.games) {
      Game game;
      game.id = g;
      game.venv = std::make_unique<rl::VectorEnv>(
          vector_env_config(env_, g, N_, env_seed(seed_, "train." + std::string(rl::game_info(g).name)), env_.threads));
      game.venv->reset();
      game.rollout = std::make_unique<rl::Rollout>(rl::RolloutConfig{T_, N_, rl::obs_size(encoder_->channels()), encoder_->num_actions()});
      games_.push_back(std::move(game));
    }
    // purejaxql counts the epsilon decay in rollouts of the whole budget.
    const int64_t total_steps = budget_steps(cfg, *this);
    const int64_t total_rollouts = std::max<int64_t>(1, total_steps / steps_per_rollout_);
    epsilon_ = rl::LinearSchedule{cfg.get_float("agent.epsilon_start"), cfg.get_float("agent.epsilon_end"), 0,
                                  std::max(1e-9, cfg.get_float("agent.epsilon_fraction") * static_cast<double>(total_rollouts))};
    targets_ = {cfg.get_float("agent.gamma"), cfg.get_float("agent.lambda"), cfg.get_bool("agent.truncation_bootstraps")};
    explore_ = std::make_unique<rl::EpsilonGreedy>(seed_, "explore");
    shuffle_rng_ = RngStream(seed_, "minibatches");
    if (ctx.log) {
      RngStream scratch(0, "describe");
      ctx.log("model: " + rl::QNetwork(q_network_options(cfg, encoder_->channels(), encoder_->num_actions()), scratch).describe());
    }
    if (ctx.log)
      ctx.log("pqn: " + cfg.get_string("env.game") + " (" + env_.protocol + " protocol), " + std::to_string(N_) + " envs x " +
              std::to_string(T_) + " steps per rollout, " + std::to_string(steps_per_rollout_) + " minibatches of " +
              std::to_string(static_cast<int64_t>(N_) * T_ / M_ * static_cast<int64_t>(games_.size())) + ", " +
              std::to_string(frames_per_step_) + " frames per step, " + std::to_string(total_rollouts) + " rollouts");
  }

  std::shared_ptr<nn::Module> make_model() override {
    RngStream init(seed_, "init");
    auto net = std::make_shared<rl::QNetwork>(q_network_options(cfg_, encoder_->channels(), encoder_->num_actions()), init);
    return net;
  }

  int64_t frames_per_step() const override { return frames_per_step_; }

  nn::Batch next_batch(int64_t step, int) override {
    const int64_t pos = served_ % steps_per_rollout_;
    if (pos == 0) collect(step);
    const int m = static_cast<int>(pos % M_);
    if (m == 0)
      for (auto& g : games_) g.rollout->shuffle(shuffle_rng_);
    const int per = N_ * T_ / M_, G = static_cast<int>(games_.size());
    const int obs = rl::obs_size(encoder_->channels());
    std::vector<uint8_t> bytes(static_cast<size_t>(per) * G * obs);
    std::vector<int32_t> actions(static_cast<size_t>(per) * G);
    std::vector<float> targets(static_cast<size_t>(per) * G);
    std::vector<int64_t> labels(static_cast<size_t>(per) * G);
    for (int g = 0; g < G; ++g) {
      const size_t at = static_cast<size_t>(g) * per;
      games_[g].rollout->gather(games_[g].rollout->minibatch(m, M_), bytes.data() + at * obs, actions.data() + at, targets.data() + at);
      std::fill(labels.begin() + at, labels.begin() + at + per, g);
    }
    ++served_;
    nn::Batch b;
    const int rows = per * G;
    b.images = encoder_->to_tensor(bytes, rows, Device::cpu());
    b.tokens = Tensor::from_vector(std::vector<int64_t>(actions.begin(), actions.end()), Shape{rows});  // actions taken
    b.targets = Tensor::from_vector(targets, Shape{rows});
    if (env_.multi_game) b.labels = Tensor::from_vector(labels, Shape{rows});
    return b;
  }

  StepResult train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) override {
    StepResult r{rl::pqn_loss(model.forward(b.images, ctx), b.tokens, b.targets), {}, b.images.size(0)};
    // The rollout's statistics ride on its first minibatch (workers = 1: next_batch ran just before).
    if (served_ % steps_per_rollout_ == 1) r.metrics = rollout_metrics_;
    return r;
  }

  EvalResult evaluate(EvalContext& ec) override {
    EvalResult e = evaluate_greedy(ec, cfg_, env_, *encoder_, seed_);
    e.metrics["eval/frames"] = static_cast<double>(ec.step * frames_per_step_);
    return e;
  }

  std::vector<std::string> headline_metrics() const override { return {"eval/return"}; }
  std::vector<std::string> label_names() const override { return game_label_names(env_); }
  std::string label_kind() const override { return "game"; }

  void save_state(TaskState& st) const override {
    st.put_int("pqn.served", served_);
    st.put_int("pqn.rollouts", rollouts_);
    st.put_rng("pqn.minibatch_rng", shuffle_rng_);
    st.put_rng("pqn.explore_rng", explore_->rng());
    for (const auto& [k, v] : rollout_metrics_) {
      char text[64];
      std::snprintf(text, sizeof text, "%a", v);  // exact, so a resumed run logs the same value
      st.put_string("pqn.metric." + k, text);
    }
    for (const auto& g : games_) {
      const std::string name(rl::game_info(g.id).name);
      st.put_tensor("pqn.env." + name, bytes_to_tensor(g.venv->save_state()));
      st.put_tensor("pqn.rollout." + name, bytes_to_tensor(g.rollout->save_state()));
    }
  }
  void load_state(const TaskState& st) override {
    served_ = st.get_int("pqn.served");
    rollouts_ = st.get_int("pqn.rollouts");
    shuffle_rng_ = st.get_rng("pqn.minibatch_rng");
    explore_->set_rng(st.get_rng("pqn.explore_rng"));
    rollout_metrics_.clear();
    for (const auto& [k, v] : st.values)
      if (k.rfind("pqn.metric.", 0) == 0) rollout_metrics_[k.substr(11)] = std::strtod(v.c_str(), nullptr);
    for (auto& g : games_) {
      const std::string name(rl::game_info(g.id).name);
      g.venv->load_state(tensor_to_bytes(st.get_tensor("pqn.env." + name)));
      g.rollout->load_state(tensor_to_bytes(st.get_tensor("pqn.rollout." + name)));
    }
  }

 private:
  struct Game {
    rl::GameId id;
    std::unique_ptr<rl::VectorEnv> venv;
    std::unique_ptr<rl::Rollout> rollout;
  };

  // Q-values of `rows` encoded observations with the current network (no gradient, eval mode).
  std::vector<float> q_values(const std::vector<uint8_t>& bytes, int rows, const std::vector<int64_t>& labels, int64_t step) {
    nn::Batch b;
    b.images = encoder_->to_tensor(bytes, rows, device_);
    if (env_.multi_game) b.labels = Tensor::from_vector(labels, Shape{rows});
    nn::ForwardContext ctx(b, step, nn::evaluation_draw_key(seed_, step));
    return model().forward(b.images, ctx).to_vector<float>();
  }

  static std::vector<float> row_max(const std::vector<float>& q, int rows, int A) {
    std::vector<float> v(rows);
    rl::max_over_actions(q.data(), rows, A, v.data());
    return v;
  }

  // One rollout of every game: T steps of N envs acting epsilon-greedily, then lambda-returns.
  void collect(int64_t step) {
    NoGradGuard no_grad;
    nn::Module& net = model();
    net.eval();
    const int G = static_cast<int>(games_.size()), A = encoder_->num_actions(), rows = G * N_;
    const double eps = epsilon_.at(rollouts_);
    std::vector<int64_t> labels(rows), game_labels(N_);
    for (int i = 0; i < rows; ++i) labels[i] = i / N_;
    std::vector<uint8_t> bytes, final_bytes;
    std::vector<int> actions(rows), env_actions(N_);
    std::vector<float> final_values(N_);
    double return_sum = 0, length_sum = 0, episodes = 0;
    std::map<std::string, std::pair<double, double>> per_game;
    for (auto& g : games_) g.rollout->clear();
    for (int t = 0; t < T_; ++t) {
      bytes.clear();
      for (auto& g : games_) encoder_->append(g.id, g.venv->observations(), N_, bytes);
      const std::vector<float> q = q_values(bytes, rows, labels, step);
      for (int gi = 0; gi < G; ++gi) {
        Game& g = games_[gi];
        int* act = actions.data() + gi * N_;
        select_actions(*explore_, q, gi * N_, N_, A, eps, act);
        for (int i = 0; i < N_; ++i) env_actions[i] = env_.multi_game ? rl::env_action(g.id, act[i], false) : act[i];
        g.venv->step(env_actions);
        bool any_truncated = false;
        for (int i = 0; i < N_; ++i) {
          any_truncated |= g.venv->truncated()[i] != 0;
          if (g.venv->terminated()[i] || g.venv->truncated()[i]) {
            return_sum += g.venv->episode_returns()[i];
            length_sum += g.venv->episode_lengths()[i];
            episodes += 1;
            auto& pg = per_game[std::string(rl::game_info(g.id).name)];
            pg.first += g.venv->episode_returns()[i];
            pg.second += 1;
          }
        }
        const float* fv = nullptr;
        if (any_truncated && targets_.truncation_bootstraps) {
          final_bytes.clear();
          encoder_->append(g.id, g.venv->final_observations(), N_, final_bytes);
          std::fill(game_labels.begin(), game_labels.end(), gi);
          final_values = row_max(q_values(final_bytes, N_, game_labels, step), N_, A);
          fv = final_values.data();
        }
        const size_t obs = static_cast<size_t>(rl::obs_size(encoder_->channels()));
        g.rollout->add(bytes.data() + static_cast<size_t>(gi) * N_ * obs, q.data() + static_cast<size_t>(gi) * N_ * A, act,
                       g.venv->rewards(), g.venv->terminated(), g.venv->truncated(), fv);
      }
    }
    bytes.clear();
    for (auto& g : games_) encoder_->append(g.id, g.venv->observations(), N_, bytes);
    const std::vector<float> last = row_max(q_values(bytes, rows, labels, step), rows, A);
    for (int gi = 0; gi < G; ++gi) {
      games_[gi].rollout->finish(last.data() + gi * N_);
      games_[gi].rollout->compute_targets(targets_);
    }
    ++rollouts_;
    rollout_metrics_.clear();
    rollout_metrics_["epsilon"] = eps;
    if (episodes > 0) {
      rollout_metrics_["episode_return"] = return_sum / episodes;
      rollout_metrics_["episode_length"] = length_sum / episodes;
      if (env_.multi_game)
        for (const auto& [name, v] : per_game) rollout_metrics_["episode_return/" + name] = v.first / v.second;
    }
    net.train(true);
  }

  Config cfg_;
  uint64_t seed_ = 0;
  Device device_ = Device::cpu();
  RlEnvSettings env_;
  std::unique_ptr<ObservationEncoder> encoder_;
  std::vector<Game> games_;
  int N_ = 1, T_ = 1, M_ = 1;
  int64_t steps_per_rollout_ = 1, frames_per_step_ = 1;
  rl::LinearSchedule epsilon_;
  rl::LambdaReturnOptions targets_;
  std::unique_ptr<rl::EpsilonGreedy> explore_;
  RngStream shuffle_rng_;
  int64_t served_ = 0, rollouts_ = 0;
  std::map<std::string, double> rollout_metrics_;
};

TaskRegistration reg{"pqn", "PQN on the MinAtar games (vectorized envs, lambda-returns, LayerNorm Q-network; MoE options)",
                     [] { return std::make_unique<PqnTask>(); }};

}  // namespace
}  // namespace moelab::experiments
