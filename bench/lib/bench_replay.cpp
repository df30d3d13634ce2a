// `moelab bench replay`: the replay buffer's cost per DQN frame (one push of a 10x10xC frame, one sample of
// a batch of 32 with its next observations), with MinAtar's DQN sizes (100k transitions, 1 stream). The
// buffer is filled first, so every push also evicts. One JSON line per channel count:
//   {"channels": 4, "push_ns": ..., "sample_ns": ..., "frame_ns": ..., ...}   (ns per CPU second, see bench env)
#include <time.h>

#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/lib/bench.h"
#include "rl/agents/replay.h"

namespace {

using namespace moelab::rl;

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int bench_replay_main(int argc, char** argv) {
  CLI::App app{"Replay buffer cost per DQN frame: push + sample(batch)"};
  int64_t capacity = 100000, frames = 200000;
  int batch = 32;
  std::vector<int> channel_counts = {4, 10};
  app.add_option("--capacity", capacity, "transitions held (default 100000, MinAtar's DQN)");
  app.add_option("--frames", frames, "frames measured after filling (default 200000)");
  app.add_option("--batch", batch, "batch sampled per frame (default 32)");
  app.add_option("--channels", channel_counts, "observation channel counts (default 4 10: breakout, seaquest)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (capacity < 2 || frames < 1 || batch < 1 || batch > capacity) {
    std::fprintf(stderr, "moelab bench replay: need capacity >= 2, frames >= 1 and 1 <= batch <= capacity\n");
    return 2;
  }
  for (int channels : channel_counts) {
    const int size = 100 * channels;
    ReplayBuffer replay({.capacity = capacity, .observation_size = size, .seed = 1});
    // A fixed set of frames that change from step to step; episodes of 500 steps end by termination.
    std::vector<uint8_t> pool(static_cast<size_t>(size) * 64);
    moelab::RngStream fill(7, "frames");
    for (uint8_t& b : pool) b = fill.uniform() < 0.1 ? 1 : 0;
    replay.begin(pool.data());
    ReplayBatch out;
    uint64_t checksum = 0;
    auto push = [&](int64_t t) {
      const int32_t action = static_cast<int32_t>(t % 6);
      const float reward = static_cast<float>(t % 3 == 0);
      const uint8_t terminated = (t % 500) == 499, truncated = 0;
      replay.push(&action, &reward, &terminated, &truncated, pool.data() + (t % 64) * size, nullptr);
    };
    for (int64_t t = 0; t < capacity + 1; ++t) push(t);
    double push_cpu = 0, sample_cpu = 0;
    for (int64_t t = 0; t < frames; t += 1000) {
      const double c0 = process_cpu_seconds();
      for (int64_t k = t; k < t + 1000; ++k) push(capacity + 1 + k);
      const double c1 = process_cpu_seconds();
      for (int k = 0; k < 1000; ++k) {
        replay.sample(batch, out);
        checksum += out.observations[(k * 131) % out.observations.size()] + out.next_observations[k % size];
      }
      push_cpu += c1 - c0;
      sample_cpu += process_cpu_seconds() - c1;
    }
    const int64_t measured = (frames + 999) / 1000 * 1000;
    std::printf(
        "{\"channels\": %d, \"capacity\": %lld, \"batch\": %d, \"frames\": %lld, \"push_ns\": %.1f, "
        "\"sample_ns\": %.1f, \"frame_ns\": %.1f, \"frames_per_cpu_s\": %.0f, \"checksum\": %llu}\n",
        channels, static_cast<long long>(capacity), batch, static_cast<long long>(measured),
        push_cpu / measured * 1e9, sample_cpu / measured * 1e9, (push_cpu + sample_cpu) / measured * 1e9,
        measured / (push_cpu + sample_cpu), static_cast<unsigned long long>(checksum));
    std::fflush(stdout);
  }
  return 0;
}

moelab::bench::BenchRegistration reg{"replay", "replay buffer push + sample cost per DQN frame", &bench_replay_main};

}  // namespace
