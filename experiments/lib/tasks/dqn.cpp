// Task `dqn`: DQN exactly as MinAtar's examples/dqn.py (docs/rl.md): one environment, replay of 100k
// transitions, one update of a batch of 32 per frame once the frame index passes agent.replay_start, a
// target network copied every agent.target_update updates, epsilon 1 -> 0.1 over 100k frames after the
// replay start, Huber loss on r + gamma max_a Q_target(s', a); the optimizer (centered RMSprop 2.5e-4,
// alpha 0.95, eps 0.01) comes from optim.*. One Trainer step is one frame; a frame without an update
// (the replay start) backpropagates 0 through one bias, which leaves RMSprop's zero state and the weights
// unchanged, so train.frames counts frames exactly.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "experiments/lib/tasks/rl_agent.h"
#include "rl/agents/exploration.h"
#include "rl/agents/replay.h"
#include "rl/agents/targets.h"

namespace moelab::experiments {
namespace {

class DqnTask : public Task {
 public:
  void declare_config(Schema& s) const override {
    declare_rl_env_keys(s, "paper", 1, false);
    s.add_section("agent", "DQN (MinAtar examples/dqn.py)");
    s.add_int("agent.replay_capacity", 100000, "transitions in the replay buffer").range(1, 100000000);
    s.add_int("agent.batch_size", 32, "transitions per update").range(1, 65536);
    s.add_int("agent.replay_start", 5000, "updates begin once the frame index exceeds this; uniform random actions before").at_least(0);
    s.add_int("agent.target_update", 1000, "copy the network to the target network every N updates").at_least(1);
    s.add_float("agent.epsilon_end", 0.1, "exploration after the decay").range(0, 1);
    s.add_int("agent.epsilon_anneal", 100000, "frames over which epsilon falls from 1 after the replay start").at_least(1);
    s.add_float("agent.gamma", 0.99, "discount").range(0, 1);
    declare_q_network_keys(s, false);
    declare_rl_eval_keys(s);
    s.add_check([](const Config& c, io::ConfigReporter& r) {
      if (c.get_int("env.num_envs") != 1)
        r.error("env.num_envs", "the dqn task plays one environment (MinAtar's dqn.py): env.num_envs must be 1");
      if (c.get_int("train.grad_accum") != 1) r.error("train.grad_accum", "the dqn task makes one update per frame: train.grad_accum must be 1");
      if (c.get_int("agent.batch_size") > c.get_int("agent.replay_capacity"))
        r.error("agent.batch_size", "agent.batch_size exceeds agent.replay_capacity");
    });
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    cfg_ = cfg;
    seed_ = ctx.seed;
    device_ = ctx.device;
    env_ = rl_env_settings(cfg);
    encoder_ = std::make_unique<ObservationEncoder>(env_);
    const rl::GameId game = env_.games[0];
    venv_ = std::make_unique<rl::VectorEnv>(vector_env_config(env_, game, 1, env_seed(seed_, "train." + std::string(rl::game_info(game).name)), 1));
    venv_->reset();
    replay_ = std::make_unique<rl::ReplayBuffer>(rl::ReplayConfig{.capacity = cfg.get_int("agent.replay_capacity"),
                                                                  .observation_size = venv_->observation_size(),
                                                                  .num_streams = 1,
                                                                  .seed = seed_});
    replay_->begin(venv_->observations());
    explore_ = std::make_unique<rl::EpsilonGreedy>(seed_, "explore");
    replay_start_ = cfg.get_int("agent.replay_start");
    epsilon_ = rl::dqn_epsilon_schedule(replay_start_, cfg.get_int("agent.epsilon_anneal"), cfg.get_float("agent.epsilon_end"));
    batch_size_ = static_cast<int>(cfg.get_int("agent.batch_size"));
    target_update_ = cfg.get_int("agent.target_update");
    gamma_ = cfg.get_float("agent.gamma");
    if (ctx.log) {
      RngStream scratch(0, "describe");
      ctx.log("model: " + rl::QNetwork(q_network_options(cfg, encoder_->channels(), encoder_->num_actions()), scratch).describe());
      ctx.log("dqn: " + cfg.get_string("env.game") + " (" + env_.protocol + " protocol), replay " +
              std::to_string(cfg.get_int("agent.replay_capacity")) + ", batch " + std::to_string(batch_size_) +
              ", updates after frame " + std::to_string(replay_start_) + ", target every " + std::to_string(target_update_) + " updates");
    }
  }

  std::shared_ptr<nn::Module> make_model() override {
    RngStream init(seed_, "init");
    return std::make_shared<rl::QNetwork>(q_network_options(cfg_, encoder_->channels(), encoder_->num_actions()), init);
  }

  int64_t frames_per_step() const override { return 1; }

  nn::Batch next_batch(int64_t step, int) override {
    ensure_target();
    const int64_t t = frames_;
    const double eps = epsilon_.at(t);
    const int A = encoder_->num_actions();
    std::vector<float> q(A, 0.0f);
    if (eps < 1.0) q = act_values(step);  // at epsilon 1 the draws alone decide (dqn.py takes no forward)
    int action = 0;
    explore_->select(q.data(), 1, A, eps, &action);
    venv_->step(std::span<const int>(&action, 1));
    replay_->push(*venv_, std::span<const int>(&action, 1));
    ++frames_;
    step_metrics_.clear();
    if (venv_->terminated()[0] || venv_->truncated()[0]) {
      step_metrics_["episode_return"] = venv_->episode_returns()[0];
      step_metrics_["episode_length"] = venv_->episode_lengths()[0];
    }
    step_metrics_["epsilon"] = eps;
    nn::Batch b;
    updating_ = t > replay_start_ && replay_->num_transitions() >= batch_size_;
    if (!updating_) return b;
    replay_->sample(batch_size_, sample_);
    rl::ReplayTensors r = rl::to_tensors(sample_, venv_->channels(), device_);
    Tensor next_q;
    {
      NoGradGuard no_grad;
      next_q = target_->forward(r.next_observations);
    }
    b.images = r.observations;
    b.tokens = r.actions;  // the actions taken
    b.targets = rl::dqn_targets(r.rewards, r.terminated, next_q, gamma_);
    return b;
  }

  StepResult train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) override {
    StepResult r;
    r.metrics = step_metrics_;  // workers = 1 (one environment): next_batch ran just before
    if (!b.images.defined()) {
      // No update this frame: a zero gradient on one bias (RMSprop's state stays 0, the weights unchanged).
      r.loss = mul(sum(model.parameters().back()), 0.0);
      return r;
    }
    r.loss = rl::dqn_loss(model.forward(b.images, ctx), b.tokens, b.targets);
    r.examples = b.images.size(0);
    return r;
  }

  void after_optimizer_step(int64_t) override {
    if (!updating_) return;
    ++updates_;
    if (updates_ % target_update_ == 0) sync_target();
  }

  EvalResult evaluate(EvalContext& ec) override {
    EvalResult e = evaluate_greedy(ec, cfg_, env_, *encoder_, seed_);
    e.metrics["eval/frames"] = static_cast<double>(ec.step);
    return e;
  }

  std::vector<std::string> headline_metrics() const override { return {"eval/return"}; }
  std::string label_kind() const override { return "game"; }

  void save_state(TaskState& st) const override {
    st.put_int("dqn.frames", frames_);
    st.put_int("dqn.updates", updates_);
    st.put_rng("dqn.explore_rng", explore_->rng());
    st.put_tensor("dqn.env", bytes_to_tensor(venv_->save_state()));
    for (auto& [name, t] : replay_->state("dqn.replay.")) st.put_tensor(name, t);
    if (target_)
      for (auto& [name, t] : target_->state_dict()) st.put_tensor("dqn.target." + name, t);
  }
  void load_state(const TaskState& st) override {
    frames_ = st.get_int("dqn.frames");
    updates_ = st.get_int("dqn.updates");
    explore_->set_rng(st.get_rng("dqn.explore_rng"));
    venv_->load_state(tensor_to_bytes(st.get_tensor("dqn.env")));
    rl::TensorList replay_state;
    for (const auto& [name, t] : st.tensors)
      if (name.rfind("dqn.replay.", 0) == 0) replay_state.emplace_back(name, t);
    replay_->load_state(replay_state, "dqn.replay.");
    ensure_target();
    nn::NamedTensors target_state;
    for (const auto& [name, t] : st.tensors)
      if (name.rfind("dqn.target.", 0) == 0) target_state.emplace_back(name.substr(11), t);
    target_->load_state_dict(target_state);
  }

 private:
  void ensure_target() {
    if (target_) return;
    target_ = make_model();
    target_->to(device_);
    target_->eval();
    sync_target();
  }
  void sync_target() {
    NoGradGuard no_grad;
    target_->load_state_dict(model().state_dict());
  }
  // Q-values of the current observation with the online network (no gradient, eval mode).
  std::vector<float> act_values(int64_t step) {
    NoGradGuard no_grad;
    nn::Module& net = model();
    net.eval();
    nn::Batch b;
    b.images = rl::observations_to_tensor(venv_->observations(), 1, venv_->channels(), rl::TensorLayout::nchw, 1.0f, device_);
    nn::ForwardContext ctx(b, step, nn::evaluation_draw_key(seed_, step));
    std::vector<float> q = net.forward(b.images, ctx).to_vector<float>();
    net.train(true);
    return q;
  }

  Config cfg_;
  uint64_t seed_ = 0;
  Device device_ = Device::cpu();
  RlEnvSettings env_;
  std::unique_ptr<ObservationEncoder> encoder_;
  std::unique_ptr<rl::VectorEnv> venv_;
  std::unique_ptr<rl::ReplayBuffer> replay_;
  std::unique_ptr<rl::EpsilonGreedy> explore_;
  std::shared_ptr<nn::Module> target_;
  rl::LinearSchedule epsilon_;
  rl::ReplayBatch sample_;
  int64_t replay_start_ = 5000, target_update_ = 1000, frames_ = 0, updates_ = 0;
  int batch_size_ = 32;
  double gamma_ = 0.99;
  bool updating_ = false;
  std::map<std::string, double> step_metrics_;
};

TaskRegistration reg{"dqn", "DQN on a MinAtar game exactly as MinAtar's examples/dqn.py (replay, target network, centered RMSprop)",
                     [] { return std::make_unique<DqnTask>(); }};

}  // namespace
}  // namespace moelab::experiments
