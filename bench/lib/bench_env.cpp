// `moelab bench env`: MinAtar environment steps per second per core, for every game, one environment
// on one thread ("single") and a vectorized batch on all cores ("vector"). Every step also writes the
// observation. One JSON line per game and mode:
//   {"game": "breakout", "mode": "single", "threads": 1, "steps_per_s_per_core": ..., ...}
// steps_per_s_per_core = steps / CPU seconds used by the process's threads, so that a machine shared with
// other work still measures what one core does; steps_per_s_wall is the plain wall-clock rate.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/lib/bench.h"
#include "rl/envs/vector_env.h"

namespace {

using namespace moelab::rl;
using Clock = std::chrono::steady_clock;

struct Measurement {
  int64_t steps = 0;
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // summed over the process's threads
  uint64_t checksum = 0;   // keeps the observation writes observable
};

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::vector<int> random_actions(size_t n, int num_actions, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> actions(n);
  for (int& a : actions) a = static_cast<int>(rng() % static_cast<uint32_t>(num_actions));
  return actions;
}

Measurement bench_single(GameId game, double seconds) {
  Environment env(game, {0.1, true, 1u});
  std::vector<uint8_t> obs(env.observation_size());
  const std::vector<int> actions = random_actions(4096, kNumActions, 7);
  Measurement m;
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  size_t a = 0;
  for (;;) {
    for (int i = 0; i < 4096; ++i) {
      const StepResult r = env.act(actions[a++ & 4095]);
      if (r.terminal) env.reset();
      env.observe(obs.data());
      m.checksum += obs[(a * 37) % obs.size()];
    }
    m.steps += 4096;
    m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (m.seconds >= seconds) break;
  }
  m.cpu_seconds = process_cpu_seconds() - cpu_start;
  return m;
}

Measurement bench_vector(GameId game, int threads, int envs_per_thread, double seconds) {
  VectorEnvConfig config = protocol_config("paper", game, threads * envs_per_thread, 1);
  config.num_threads = threads;
  VectorEnv venv(config);
  venv.reset();
  const int n = venv.num_envs();
  const std::vector<int> actions = random_actions(static_cast<size_t>(n) * 16, venv.num_actions(), 9);
  Measurement m;
  venv.step(std::span<const int>(actions.data(), n));  // warm the pool up
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  for (int batch = 0;; ++batch) {
    venv.step(std::span<const int>(actions.data() + static_cast<size_t>(batch % 16) * n, n));
    m.checksum += venv.observations()[(batch * 131) % (n * venv.observation_size())];
    m.steps += n;
    if ((batch & 7) == 7) {
      m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (m.seconds >= seconds) break;
    }
  }
  m.cpu_seconds = process_cpu_seconds() - cpu_start;
  return m;
}

void print_line(GameId game, const char* mode, int threads, int envs, const Measurement& m) {
  std::printf(
      "{\"game\": \"%s\", \"mode\": \"%s\", \"threads\": %d, \"steps_per_s_per_core\": %.0f, "
      "\"steps_per_s_wall\": %.0f, \"envs\": %d, \"steps\": %lld, \"wall_seconds\": %.3f, \"cpu_seconds\": %.3f, "
      "\"checksum\": %llu}\n",
      std::string(game_info(game).name).c_str(), mode, threads, m.steps / m.cpu_seconds, m.steps / m.seconds, envs,
      static_cast<long long>(m.steps), m.seconds, m.cpu_seconds, static_cast<unsigned long long>(m.checksum));
  std::fflush(stdout);
}

int bench_env_main(int argc, char** argv) {
  CLI::App app{"MinAtar environment throughput: steps per second per core, single and vectorized"};
  double seconds = 1.0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int envs_per_thread = 256;
  std::vector<std::string> games;
  app.add_option("--seconds", seconds, "measuring time per game and mode (default 1)");
  app.add_option("--threads", threads, "threads of the vectorized run (default: all hardware threads)");
  app.add_option("--envs-per-thread", envs_per_thread, "environments per thread in the vectorized run (default 256)");
  app.add_option("--games", games, "games to run (default: all five)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (threads < 1 || envs_per_thread < 1 || !(seconds > 0)) {
    std::fprintf(stderr, "moelab bench env: --threads, --envs-per-thread and --seconds must be positive\n");
    return 2;
  }
  std::vector<GameId> ids;
  try {
    for (const auto& g : games) ids.push_back(game_id_from_name(g));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "moelab bench env: %s\n", e.what());
    return 2;
  }
  if (ids.empty()) ids.assign(all_games().begin(), all_games().end());
  for (GameId game : ids) {
    print_line(game, "single", 1, 1, bench_single(game, seconds));
    print_line(game, "vector", threads, threads * envs_per_thread, bench_vector(game, threads, envs_per_thread, seconds));
  }
  return 0;
}

moelab::bench::BenchRegistration reg{"env", "MinAtar steps/s per core, single and vectorized", &bench_env_main};

}  // namespace
