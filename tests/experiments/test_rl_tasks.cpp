// The RL tasks through the `moelab` program: an interrupted run resumed equals the uninterrupted one
// (environments, replay, rollouts, target network, exploration streams), a small PQN agent learns
// Breakout well above an untrained network, and bad configs are errors at the key.
#include <gtest/gtest.h>

#include "core/autograd/autograd.h"
#include "experiments/lib/tasks/rl_agent.h"
#include "experiments/moelab_cli_util.h"

namespace moelab::testing {
namespace {

using json = nlohmann::json;

std::string pqn_config(const std::string& extra = "") {
  return R"(task = "pqn"
seed = 3

[env]
game = "breakout"
protocol = "gymnax"
num_envs = 8

[agent]
num_steps = 4
epochs = 2
minibatches = 2

[model]
hidden = 32
penultimate = "moe"
tokenization = "per_conv"

[model.moe]
router = "top_k"
num_experts = 4
top_k = 1
expert_d_ff = 16
capacity_mode = "capacity"
capacity_factor = 1.0

[eval]
episodes = 2
max_steps = 40

[train]
steps = 24
eval_every = 8
checkpoint_every = 8
keep_checkpoints = 0
log_every = 4
threads = 1

[optim]
name = "adamw"
lr = 5e-4
schedule = "linear"
clip_grad_norm = 10.0
)" + extra;
}

std::string dqn_config(const std::string& extra = "") {
  return R"(task = "dqn"
seed = 5

[env]
game = "space_invaders"
protocol = "paper"

[agent]
replay_capacity = 300
batch_size = 4
replay_start = 20
target_update = 5
epsilon_anneal = 30

[model]
hidden = 16

[eval]
episodes = 2
max_steps = 40

[train]
frames = 60
eval_every = 20
checkpoint_every = 20
keep_checkpoints = 0
log_every = 5
threads = 1

[optim]
name = "rmsprop"
lr = 2.5e-4
alpha = 0.95
eps = 0.01
centered = true
schedule = "constant"
clip_grad_norm = 0.0
)" + extra;
}

void expect_resume_equals_uninterrupted(const std::string& test, const std::string& config_text, int stop_at, int last_step) {
  fs::path root = fresh_dir(test, "runs");
  fs::path config = root / "rl.toml";
  write_text(config, config_text);
  auto run = [&](const fs::path& dir, const std::vector<std::string>& env, bool resume) {
    std::vector<std::string> args = {"run", config.string(), "--run-dir", dir.string(), "--progress", "none", "--no-report"};
    if (resume) args.push_back("--resume");
    return run_moelab(args, env);
  };
  CommandResult ref = run(root / "reference", {}, false);
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  CommandResult stopped = run(root / "interrupted", {"MOELAB_TEST_SIGINT_AT_STEP=" + std::to_string(stop_at)}, false);
  ASSERT_EQ(stopped.exit_code, 1) << stopped.output;
  CommandResult resumed = run(root / "interrupted", {}, true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step " + std::to_string(stop_at) + ")"), std::string::npos) << resumed.output;
  const auto a = metrics_without_time(root / "reference"), b = metrics_without_time(root / "interrupted");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "metrics record " << i;
  char step_dir[32];
  std::snprintf(step_dir, sizeof step_dir, "step_%09d", last_step);
  for (const char* f : {"model.safetensors", "state.safetensors"})
    EXPECT_EQ(read_text(root / "reference" / "ckpt" / step_dir / f), read_text(root / "interrupted" / "ckpt" / step_dir / f))
        << f << " differs after resume";
  json s = json::parse(read_text(root / "reference" / "summary.json"));
  ASSERT_TRUE(s["eval/return"].is_number());

  // The run directory rebuilds the agent (config + weights): its greedy episodes give the run's final return.
  experiments::RlAgent agent = experiments::load_rl_agent(root / "reference");
  EXPECT_EQ(agent.step, last_step);
  experiments::EvalContext ec(*agent.network, agent.step, true, 0, Device::cpu());
  NoGradGuard no_grad;
  const auto e = experiments::evaluate_greedy(ec, agent.cfg, agent.env, *agent.encoder, agent.seed);
  EXPECT_EQ(e.metrics.at("eval/return"), s["eval/return"].get<double>());
}

// Stopped after step 11: inside a rollout's minibatches (4 per rollout), between checkpoints.
TEST(RlTasks, PqnResumedEqualsUninterrupted) { expect_resume_equals_uninterrupted("pqn_resume", pqn_config(), 11, 24); }

// Stopped after frame 33: past the replay start, between target copies and checkpoints.
TEST(RlTasks, DqnResumedEqualsUninterrupted) { expect_resume_equals_uninterrupted("dqn_resume", dqn_config(), 33, 60); }

TEST(RlTasks, MultiGamePqnLogsGameRouting) {
  fs::path root = fresh_dir("pqn_multi", "runs");
  fs::path config = root / "multi.toml";
  write_text(config, pqn_config());
  CommandResult r = run_moelab({"run", config.string(), "env.game=all", "env.game_id_input=true", "train.steps=8",
                                "--run-dir", (root / "run").string(), "--progress", "none", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json s = json::parse(read_text(root / "run" / "summary.json"));
  EXPECT_EQ(s["routing_labels"].size(), 5u);
  EXPECT_TRUE(s["label_mi_bits"]["moe"].is_number());
  for (const char* game : {"breakout", "asterix", "freeway", "seaquest", "space_invaders"})
    EXPECT_TRUE(s["metrics"][std::string("eval/return/") + game].is_number()) << game;
  EXPECT_TRUE(fs::exists(root / "run" / "routing" / "labels_experts_moe.csv"));
}

// A small PQN agent (64 envs x 16 steps, dense width 64) trained for 98,304 frames scores well above an
// untrained network (one step of training) on the same evaluation episodes.
TEST(RlTasks, SmallPqnAgentLearnsBreakout) {
  fs::path root = fresh_dir("pqn_learns", "runs");
  fs::path config = root / "learn.toml";
  write_text(config, pqn_config());
  const std::vector<std::string> common = {"env.num_envs=64", "agent.num_steps=16", "agent.minibatches=8",
                                           "model.penultimate=dense", "model.hidden=64", "eval.episodes=16",
                                           "eval.max_steps=1000", "train.checkpoint_every=0", "train.eval_every=0"};
  auto run = [&](const std::string& name, int64_t frames) {
    std::vector<std::string> args = {"run", config.string(), "train.frames=" + std::to_string(frames)};
    args.insert(args.end(), common.begin(), common.end());
    for (const std::string& a : {std::string("--run-dir"), (root / name).string(), std::string("--progress"), std::string("none"),
                                 std::string("--no-report")})
      args.push_back(a);
    CommandResult r = run_moelab(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return json::parse(read_text(root / name / "summary.json"))["eval/return"].get<double>();
  };
  const double untrained = run("untrained", 64);  // one step of 64 frames: the network barely moves
  const double trained = run("trained", 98304);
  EXPECT_GT(trained, 4.0) << "untrained " << untrained;
  EXPECT_GT(trained, untrained + 3.0);
}

TEST(RlTasks, BadConfigsAreErrorsAtTheKey) {
  fs::path root = fresh_dir("rl_bad", "runs");
  fs::path config = root / "bad.toml";
  write_text(config, pqn_config());
  auto expect_error = [&](const std::vector<std::string>& overrides, const std::string& what) {
    std::vector<std::string> args = {"run", config.string()};
    args.insert(args.end(), overrides.begin(), overrides.end());
    args.insert(args.end(), {"--run-dir", (root / "never").string(), "--progress", "none"});
    CommandResult r = run_moelab(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(root / "never" / "metrics.jsonl"));
  };
  expect_error({"env.game=pong"}, "<override 1: env.game=pong>");
  expect_error({"env.game=pong"}, "pong");
  // Keys a preset sets have no default, so an override adds them with '+'.
  expect_error({"+env.sticky_action_prob=0.1"}, "<override 1: +env.sticky_action_prob=0.1>: env.sticky_action_prob = 0.1 contradicts env.protocol = \"gymnax\"");
  expect_error({"+env.time_limit=500"}, "env.time_limit = 500 contradicts env.protocol = \"gymnax\"");
  expect_error({"env.game_id_input=true"}, "env.game_id_input needs env.game = \"all\"");
  expect_error({"agent.minibatches=3"}, "agent.minibatches = 3 does not divide");
  // Evaluations every N frames need a task with frames.
  CommandResult toy = run_moelab({"run", std::string(MOELAB_SOURCE_DIR) + "/configs/toy_mixture.toml", "train.eval_every_frames=100",
                                  "--run-dir", (root / "toy").string(), "--progress", "none"});
  EXPECT_EQ(toy.exit_code, 2) << toy.output;
  EXPECT_NE(toy.output.find("<override 1: train.eval_every_frames=100>: train.eval_every_frames needs a task that plays environment frames"),
            std::string::npos)
      << toy.output;

  // In a file the error names file:line:col of the key.
  fs::path in_file = root / "conflict.toml";
  write_text(in_file, dqn_config("") + "\n");
  std::string text = read_text(in_file);
  text.replace(text.find("protocol = \"paper\""), 18, "protocol = \"paper\"\nminimal_action_set = true");
  write_text(in_file, text);
  CommandResult r = run_moelab({"run", in_file.string(), "--run-dir", (root / "never2").string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(in_file.string() + ":7:22: env.minimal_action_set = true contradicts env.protocol = \"paper\""),
            std::string::npos)
      << r.output;
  // An explicit key that agrees with the preset is accepted; "custom" lets the keys decide.
  CommandResult ok = run_moelab({"run", config.string(), "+env.sticky_action_prob=0.0", "env.protocol=custom",
                                 "+env.time_limit=200", "train.steps=4", "--run-dir", (root / "ok").string(),
                                 "--progress", "none", "--no-report"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  CommandResult dqn_envs = run_moelab({"run", in_file.string(), "env.minimal_action_set=false", "env.num_envs=4",
                                       "--run-dir", (root / "never3").string(), "--progress", "none"});
  EXPECT_EQ(dqn_envs.exit_code, 2);
  EXPECT_NE(dqn_envs.output.find("env.num_envs must be 1"), std::string::npos) << dqn_envs.output;
}

}  // namespace
}  // namespace moelab::testing
