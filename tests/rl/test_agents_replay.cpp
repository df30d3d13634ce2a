// The replay buffer: every sampled transition is one that happened (with the true last observation after a
// truncation), eviction of the oldest, uniform and distinct sampling, determinism for a seed, and exact
// save/restore through a safetensors file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "core/nn/tensor_file.h"
#include "rl/agents/replay.h"
#include "rl/envs/vector_env.h"

using namespace moelab;
using namespace moelab::rl;

namespace {
constexpr int kObs = 8;  // bytes per synthetic frame

// A scripted single-stream episode source: frame k holds the byte pattern of k (first four bytes), episodes
// of `length` steps that end by termination when `terminate` and by truncation otherwise.
struct Script {
  int length = 5;
  bool terminate = true;
  int next_id = 0;
  std::vector<uint8_t> frame(int id) const {
    std::vector<uint8_t> f(kObs, 0);
    std::memcpy(f.data(), &id, 4);
    f[4] = static_cast<uint8_t>(id % 251);
    return f;
  }
  static int id_of(const uint8_t* f) {
    int id;
    std::memcpy(&id, f, 4);
    return id;
  }
};

// Pushes `steps` steps of the script; returns the frame id of each pushed transition's s and s'.
struct Recorded {
  int obs, next;
  int32_t action;
  float reward;
  bool terminated, truncated;
};

std::vector<Recorded> drive(ReplayBuffer& replay, Script& script, int steps, int& current, int& t_in_episode) {
  std::vector<Recorded> out;
  for (int i = 0; i < steps; ++i) {
    const int32_t action = (current * 7) % 6;
    const float reward = static_cast<float>(current % 3);
    ++t_in_episode;
    const bool ended = t_in_episode == script.length;
    const uint8_t term = ended && script.terminate, trunc = ended && !script.terminate;
    const int last = script.next_id++;   // the step's true next observation
    int next = last;
    if (ended) {
      next = script.next_id++;  // auto-reset: the next episode's first frame
      t_in_episode = 0;
    }
    const std::vector<uint8_t> next_frame = script.frame(next), last_frame = script.frame(last);
    replay.push(&action, &reward, &term, &trunc, next_frame.data(), last_frame.data());
    out.push_back({current, (term ? next : last), action, reward, term != 0, trunc != 0});
    current = next;
  }
  return out;
}

ReplayBuffer started(const ReplayConfig& config, Script& script, int& current) {
  ReplayBuffer replay(config);
  current = script.next_id++;
  replay.begin(script.frame(current).data());
  return replay;
}
}  // namespace

TEST(Replay, SamplesAreTransitionsThatHappenedAndOldOnesLeave) {
  for (bool terminate : {true, false}) {
    Script script{5, terminate};
    int current = 0, t = 0;
    ReplayBuffer replay = started({.capacity = 40, .observation_size = kObs, .seed = 1}, script, current);
    const std::vector<Recorded> history = drive(replay, script, 130, current, t);
    // 40 transitions fit; a truncation's true last frame takes a slot of its own (one per 6 frames here).
    const int64_t held = replay.num_transitions();
    if (terminate) {
      EXPECT_EQ(held, 40);
    } else {
      EXPECT_TRUE(held >= 33 && held < 40) << held;
    }
    std::map<int, Recorded> by_obs;
    for (size_t i = history.size() - held; i < history.size(); ++i) by_obs[history[i].obs] = history[i];
    ReplayBatch batch;
    for (int round = 0; round < 50; ++round) {
      replay.sample(32, batch);
      for (int b = 0; b < 32; ++b) {
        const int obs = Script::id_of(&batch.observations[b * kObs]);
        auto it = by_obs.find(obs);
        ASSERT_NE(it, by_obs.end()) << "sampled frame " << obs << " is not among the last " << held << " transitions";
        const Recorded& r = it->second;
        EXPECT_EQ(batch.actions[b], r.action);
        EXPECT_EQ(batch.rewards[b], r.reward);
        EXPECT_EQ(batch.terminated[b], r.terminated);
        EXPECT_EQ(batch.truncated[b], r.truncated);
        // A truncated step's next observation is its true last one, never the next episode's first.
        EXPECT_EQ(Script::id_of(&batch.next_observations[b * kObs]), r.next) << "terminate " << terminate;
        EXPECT_EQ(std::memcmp(&batch.observations[b * kObs], script.frame(obs).data(), kObs), 0);
      }
    }
  }
}

TEST(Replay, UniformOverStoredTransitions) {
  Script script{7, false};  // truncations: their final frames must never be drawn as a transition start
  int current = 0, t = 0;
  ReplayBuffer replay =
      started({.capacity = 20, .observation_size = kObs, .seed = 3, .distinct_in_batch = false}, script, current);
  const std::vector<Recorded> history = drive(replay, script, 55, current, t);
  const int64_t held = replay.num_transitions();  // 20 less the slots of truncated episodes' last frames
  ASSERT_TRUE(held >= 17 && held < 20) << held;
  std::map<int, int> counts;
  ReplayBatch batch;
  const int draws = 40000;
  for (int i = 0; i < draws / 40; ++i) {
    replay.sample(40, batch);
    for (int b = 0; b < 40; ++b) ++counts[Script::id_of(&batch.observations[b * kObs])];
  }
  ASSERT_EQ(static_cast<int64_t>(counts.size()), held);
  const double expected = draws / static_cast<double>(held), sigma = std::sqrt(expected * (1 - 1.0 / held));
  for (const auto& [id, n] : counts) {
    EXPECT_NEAR(n, expected, 5 * sigma) << "frame " << id;
    EXPECT_TRUE(std::any_of(history.end() - held, history.end(), [&](const Recorded& r) { return r.obs == id; }))
        << "frame " << id << " starts no stored transition";
  }
}

TEST(Replay, DistinctBatchesAndErrors) {
  Script script{9, true};
  int current = 0, t = 0;
  ReplayBuffer replay = started({.capacity = 16, .observation_size = kObs, .seed = 4}, script, current);
  ReplayBatch batch;
  EXPECT_THROW(replay.sample(1, batch), std::logic_error);  // nothing stored yet
  drive(replay, script, 10, current, t);
  EXPECT_THROW(replay.sample(11, batch), std::logic_error);  // 10 stored, 11 distinct asked
  replay.sample(10, batch);
  std::vector<int64_t> slots = batch.slots;
  std::sort(slots.begin(), slots.end());
  EXPECT_EQ(std::unique(slots.begin(), slots.end()), slots.end());
  EXPECT_THROW(ReplayBuffer({.capacity = 10, .observation_size = kObs, .num_streams = 3}), std::invalid_argument);
  ReplayBuffer fresh({.capacity = 10, .observation_size = kObs});
  const int32_t a = 0;
  const float r = 0;
  const uint8_t f = 0;
  EXPECT_THROW(fresh.push(&a, &r, &f, &f, script.frame(0).data(), nullptr), std::logic_error);  // before begin
  // A truncation without its final observation is refused before anything is stored.
  const uint8_t yes = 1;
  const int64_t before = replay.num_transitions();
  EXPECT_THROW(replay.push(&a, &r, &f, &yes, script.frame(0).data(), nullptr), std::invalid_argument);
  EXPECT_EQ(replay.num_transitions(), before);
}

TEST(Replay, SameSeedSameSamplesAndSaveRestoreContinuesExactly) {
  const std::string path = (std::filesystem::temp_directory_path() / "moelab_test_replay_state.safetensors").string();
  const ReplayConfig config{.capacity = 64, .observation_size = kObs, .num_streams = 2, .seed = 11};
  // Two streams pushed in lockstep from two scripts (one terminating, one truncating).
  struct Run {
    Script scripts[2] = {{6, true, 0}, {4, false, 1000000}};
    int current[2] = {0, 0}, t[2] = {0, 0};
    ReplayBuffer replay;
    explicit Run(const ReplayConfig& c) : replay(c) {
      std::vector<uint8_t> first(2 * kObs);
      for (int s = 0; s < 2; ++s) {
        current[s] = scripts[s].next_id++;
        std::memcpy(&first[s * kObs], scripts[s].frame(current[s]).data(), kObs);
      }
      replay.begin(first.data());
    }
    void step() {
      int32_t actions[2];
      float rewards[2];
      uint8_t term[2], trunc[2];
      std::vector<uint8_t> next(2 * kObs), last(2 * kObs);
      for (int s = 0; s < 2; ++s) {
        actions[s] = current[s] % 6;
        rewards[s] = static_cast<float>(s + current[s] % 5);
        const bool ended = ++t[s] == scripts[s].length;
        term[s] = ended && scripts[s].terminate;
        trunc[s] = ended && !scripts[s].terminate;
        const int l = scripts[s].next_id++;
        int n = l;
        if (ended) {
          n = scripts[s].next_id++;
          t[s] = 0;
        }
        std::memcpy(&next[s * kObs], scripts[s].frame(n).data(), kObs);
        std::memcpy(&last[s * kObs], scripts[s].frame(l).data(), kObs);
        current[s] = n;
      }
      replay.push(actions, rewards, term, trunc, next.data(), last.data());
    }
    std::vector<int64_t> sample_slots() {
      ReplayBatch batch;
      replay.sample(32, batch);
      std::vector<int64_t> ids;
      for (int b = 0; b < 32; ++b) ids.push_back(Script::id_of(&batch.observations[b * kObs]));
      for (int b = 0; b < 32; ++b) ids.push_back(Script::id_of(&batch.next_observations[b * kObs]));
      return ids;
    }
  };
  Run a(config), b(config);
  for (int i = 0; i < 50; ++i) {
    a.step();
    b.step();
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.sample_slots(), b.sample_slots());
  ReplayConfig other_seed = config;
  other_seed.seed = 12;
  Run c(other_seed);
  for (int i = 0; i < 50; ++i) c.step();
  EXPECT_NE(a.sample_slots(), c.sample_slots());

  // Save a mid-run state (buffer not yet full: only written slots are saved) and a later, wrapped one.
  for (int save_at : {10, 90}) {
    Run uninterrupted(config);
    for (int i = 0; i < save_at; ++i) {
      uninterrupted.step();
      if (i > 20) uninterrupted.sample_slots();
    }
    nn::save_tensors(path, uninterrupted.replay.state());
    Run resumed(config);  // same scripts, so its env side continues identically once synced
    for (int i = 0; i < save_at; ++i) resumed.step();
    resumed.replay = ReplayBuffer(config);
    resumed.replay.load_state(nn::load_tensors(path));
    EXPECT_EQ(resumed.replay.num_transitions(), uninterrupted.replay.num_transitions());
    EXPECT_EQ(resumed.replay.rng().counter(), uninterrupted.replay.rng().counter());
    for (int i = 0; i < 80; ++i) {
      uninterrupted.step();
      resumed.step();
      if (uninterrupted.replay.num_transitions() >= 32) {
        ASSERT_EQ(uninterrupted.sample_slots(), resumed.sample_slots()) << "save at " << save_at << " step " << i;
      }
    }
    const TensorList x = uninterrupted.replay.state(), y = resumed.replay.state();
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].first, y[i].first);
      ASSERT_EQ(x[i].second.nbytes(), y[i].second.nbytes()) << x[i].first;
      EXPECT_EQ(std::memcmp(x[i].second.raw_data(), y[i].second.raw_data(), x[i].second.nbytes()), 0) << x[i].first;
    }
  }
  std::filesystem::remove(path);
}

TEST(Replay, LoadStateNamesTheWrongTensor) {
  Script script{5, true};
  int current = 0, t = 0;
  ReplayBuffer replay = started({.capacity = 8, .observation_size = kObs}, script, current);
  drive(replay, script, 12, current, t);
  const TensorList state = replay.state("ckpt.replay.");
  auto message_of = [](ReplayBuffer& target, const TensorList& tensors) -> std::string {
    try {
      target.load_state(tensors, "ckpt.replay.");
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  ReplayBuffer bigger({.capacity = 16, .observation_size = kObs});
  EXPECT_NE(message_of(bigger, state).find("'ckpt.replay.meta' holds capacity 8"), std::string::npos);
  TensorList missing(state.begin(), state.end() - 1);  // no flags
  ReplayBuffer same({.capacity = 8, .observation_size = kObs});
  EXPECT_NE(message_of(same, missing).find("'ckpt.replay.flags' is missing"), std::string::npos);
  TensorList bad_flags = state;
  bad_flags.back().second = bad_flags.back().second.clone();
  bad_flags.back().second.data<int32_t>()[3] = 9;
  EXPECT_NE(message_of(same, bad_flags).find("'ckpt.replay.flags' row 3 holds 9"), std::string::npos);
  TensorList wrong_dtype = state;
  wrong_dtype[1].second = wrong_dtype[1].second.to(DType::i32);  // positions
  EXPECT_NE(message_of(same, wrong_dtype).find("'ckpt.replay.positions' is i32, expected i64"), std::string::npos);
}

// With a real VectorEnv (gymnax protocol, a short time limit): each sampled transition equals one recorded
// from the env, including the true last observation of truncated episodes.
TEST(Replay, VectorEnvTransitionsWithTruncation) {
  VectorEnvConfig env_config = protocol_config("gymnax", GameId::kBreakout, 3, 21);
  env_config.time_limit = 15;
  env_config.num_threads = 1;
  VectorEnv venv(env_config);
  venv.reset();
  const int size = venv.observation_size();
  ReplayBuffer replay({.capacity = 3 * 300, .observation_size = size, .num_streams = 3, .seed = 2});
  replay.begin(venv.observations());
  struct Step {
    std::vector<uint8_t> obs, next;
    int action;
    bool terminated, truncated;
  };
  std::vector<Step> steps;
  std::vector<uint8_t> previous(venv.observations(), venv.observations() + 3 * size);
  std::vector<int> actions(3);
  int truncations = 0;
  for (int t = 0; t < 200; ++t) {
    for (int i = 0; i < 3; ++i) actions[i] = (t * 5 + i * 3) % venv.num_actions();
    venv.step(actions);
    replay.push(venv, actions);
    for (int i = 0; i < 3; ++i) {
      const bool ended = venv.terminated()[i] || venv.truncated()[i];
      const uint8_t* next = ended ? venv.final_observations() + i * size : venv.observations() + i * size;
      steps.push_back({{previous.begin() + i * size, previous.begin() + (i + 1) * size},
                       {next, next + size},
                       actions[i],
                       venv.terminated()[i] != 0,
                       venv.truncated()[i] != 0});
      truncations += venv.truncated()[i];
    }
    previous.assign(venv.observations(), venv.observations() + 3 * size);
  }
  ASSERT_GT(truncations, 0);
  ReplayBatch batch;
  int truncated_seen = 0;
  for (int round = 0; round < 40; ++round) {
    replay.sample(32, batch);
    for (int b = 0; b < 32; ++b) {
      const bool found = std::any_of(steps.begin(), steps.end(), [&](const Step& s) {
        return s.action == batch.actions[b] && s.terminated == (batch.terminated[b] != 0) &&
               s.truncated == (batch.truncated[b] != 0) &&
               std::memcmp(s.obs.data(), &batch.observations[b * size], size) == 0 &&
               (s.terminated || std::memcmp(s.next.data(), &batch.next_observations[b * size], size) == 0);
      });
      ASSERT_TRUE(found) << "sampled transition " << b << " (slot " << batch.slots[b] << ") never happened";
      truncated_seen += batch.truncated[b];
    }
  }
  EXPECT_GT(truncated_seen, 0);

  const ReplayTensors tensors = to_tensors(batch, venv.channels());
  EXPECT_EQ(tensors.observations.shape(), (Shape{32, venv.channels(), 10, 10}));
  const std::vector<float> x = tensors.next_observations.to_vector<float>();
  for (int c = 0; c < venv.channels(); ++c)  // batch row 5, channel c, cell (y 3, x 6)
    EXPECT_EQ(x[((5 * venv.channels() + c) * 10 + 3) * 10 + 6],
              batch.next_observations[5 * size + obs_index(3, 6, c, venv.channels())]);
  EXPECT_EQ(tensors.actions.to_vector<int64_t>()[7], batch.actions[7]);
  EXPECT_EQ(tensors.terminated.to_vector<float>()[7], batch.terminated[7]);
  EXPECT_THROW(to_tensors(batch, venv.channels() + 1), std::invalid_argument);
}
