// Soak: 5,000 steps of the toy task with a checkpoint every 10 steps and keep_checkpoints = 3, sampling
// the process's open files (/proc/<pid>/fd), resident memory (VmRSS) and the run directory's disk use
// while it runs: none of them may grow with the number of checkpoints written.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "moelab_cli_util.h"

using namespace moelab::testing;

namespace {

struct Sample {
  double t_s;
  int64_t fds, rss_kib, run_dir_bytes, ckpt_bytes, ckpt_entries;
};

int64_t count_fds(pid_t pid) {
  std::error_code ec;
  int64_t n = 0;
  for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return ec && n == 0 ? -1 : n;
}

int64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  return -1;
}

// Bytes of regular files below `dir`; files that vanish while walking (pruned checkpoints) are skipped.
int64_t disk_bytes(const fs::path& dir, int64_t* entries = nullptr) {
  int64_t total = 0;
  std::error_code ec;
  if (entries) *entries = 0;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it.depth() == 0 && entries) ++*entries;
    if (it->is_regular_file(size_ec)) {
      const auto n = fs::file_size(it->path(), size_ec);
      if (!size_ec) total += static_cast<int64_t>(n);
    }
  }
  return total;
}

pid_t spawn_moelab(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    std::string exe = std::string(MOELAB_BINARY_DIR) + "/moelab";
    std::vector<char*> argv{exe.data()};
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

template <typename F> int64_t max_of(const std::vector<Sample>& s, size_t from, size_t to, F field) {
  int64_t m = 0;
  for (size_t i = from; i < to; ++i) m = std::max(m, field(s[i]));
  return m;
}
template <typename F> int64_t median_of(const std::vector<Sample>& s, size_t from, size_t to, F field) {
  std::vector<int64_t> v;
  for (size_t i = from; i < to; ++i) v.push_back(field(s[i]));
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

TEST(Soak, FiveThousandStepsWithCheckpointsKeepFilesMemoryAndDiskFlat) {
  // Under a sanitizer build (make test-sanitize sets MOELAB_SANITIZED) the run is shortened, not skipped.
  const bool sanitized = std::getenv("MOELAB_SANITIZED") != nullptr;
  const int steps = sanitized ? 1500 : 5000;
  // ASan keeps freed memory in a 256 MiB quarantine, which alone grew the child's RSS by 240 MiB over the
  // run (344 -> 588 MiB); with an 8 MiB quarantine the RSS is flat and use-after-free is still caught.
  if (sanitized) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    ::setenv("ASAN_OPTIONS", ((asan ? std::string(asan) + ":" : std::string()) + "quarantine_size_mb=8").c_str(), 1);
  }
  const fs::path root = fresh_dir("soak", "run");
  const fs::path run_dir = root / "toy", log = root / "moelab.log";
  const pid_t pid = spawn_moelab({"run", std::string(MOELAB_SOURCE_DIR) + "/configs/toy_mixture.toml",
                                  "train.steps=" + std::to_string(steps), "train.checkpoint_every=10",
                                  "train.keep_checkpoints=3", "train.eval_every=0", "train.log_every=100",
                                  "optim.warmup_steps=10", "model.d_model=8", "model.d_ff=8", "data.batch_size=16",
                                  "data.train_size=512", "data.eval_size=64", "--run-dir", run_dir.string(),
                                  "--progress", "none", "--no-report"},
                                 log);
  ASSERT_GT(pid, 0);
  std::vector<Sample> samples;
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    Sample s{};
    s.t_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.fds = count_fds(pid);
    s.rss_kib = rss_kib(pid);
    s.run_dir_bytes = disk_bytes(run_dir);
    s.ckpt_bytes = disk_bytes(run_dir / "ckpt", &s.ckpt_entries);
    if (s.fds > 0 && s.rss_kib > 0) samples.push_back(s);
    if (s.t_s > 600) {  // a hang: stop it and fail below
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(log);
  ASSERT_GE(samples.size(), 40u) << "too few samples to judge (" << samples.size() << ")";

  // Compare the second quarter (after start-up) with the last quarter of the run.
  const size_t n = samples.size(), q = n / 4;
  auto fds = [](const Sample& s) { return s.fds; };
  auto rss = [](const Sample& s) { return s.rss_kib; };
  auto ckpt = [](const Sample& s) { return s.ckpt_bytes; };
  auto entries = [](const Sample& s) { return s.ckpt_entries; };
  const int64_t fd_early = max_of(samples, q, 2 * q, fds), fd_late = max_of(samples, 3 * q, n, fds);
  const int64_t rss_early = median_of(samples, q, 2 * q, rss), rss_late = median_of(samples, 3 * q, n, rss);
  const int64_t ckpt_early = max_of(samples, q, 2 * q, ckpt), ckpt_late = max_of(samples, 3 * q, n, ckpt);
  const int64_t run_early = median_of(samples, q, 2 * q, [](const Sample& s) { return s.run_dir_bytes; });
  const int64_t run_late = median_of(samples, 3 * q, n, [](const Sample& s) { return s.run_dir_bytes; });
  std::printf("soak: %d steps in %.1f s, %zu samples\n", steps, samples.back().t_s, n);
  std::printf("soak: open files max %lld (2nd quarter) -> %lld (last quarter)\n", (long long)fd_early, (long long)fd_late);
  std::printf("soak: VmRSS median %lld KiB -> %lld KiB\n", (long long)rss_early, (long long)rss_late);
  std::printf("soak: ckpt/ max %lld B -> %lld B; run dir median %lld B -> %lld B\n", (long long)ckpt_early,
              (long long)ckpt_late, (long long)run_early, (long long)run_late);

  // Open files: a leak of one descriptor per checkpoint would add hundreds; allow the transient ones.
  EXPECT_LE(fd_late, fd_early + 2);
  // Memory: flat within allocator noise (a leaked checkpoint copy per save would grow it steadily).
  EXPECT_LE(rss_late, rss_early + rss_early / 20 + 2048) << "VmRSS grew";
  // Disk: at most keep_checkpoints + the one being written, and no growth of the checkpoint area.
  EXPECT_LE(max_of(samples, q, n, entries), 4);
  // (a checkpoint's size varies by a few bytes with the digits of the step in its metadata; one leaked
  // checkpoint would add tens of kilobytes)
  EXPECT_LE(ckpt_late, ckpt_early + 1024);
  // The rest of the run directory grows only by its logs: a few hundred bytes per logged step.
  EXPECT_LE(run_late - ckpt_late - (run_early - ckpt_early), int64_t(steps) * 20) << "logs grew faster than expected";

  // The run completed and kept exactly the three newest checkpoints.
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(run_dir / "ckpt")) kept.push_back(e.path().filename().string());
  std::sort(kept.begin(), kept.end());
  char last[3][32];
  for (int i = 0; i < 3; ++i) std::snprintf(last[i], sizeof last[i], "step_%09d", steps - 20 + 10 * i);
  EXPECT_EQ(kept, (std::vector<std::string>{last[0], last[1], last[2]}));
  fs::remove_all(root.parent_path());
}
