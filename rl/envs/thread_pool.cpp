#include "rl/envs/thread_pool.h"

#include <chrono>
#include <stdexcept>
#include <string>

namespace moelab::rl {

namespace {
// Spin budgets: a worker waits for the next job a little longer than the caller waits for the last chunk
// (a chunk is a few microseconds of work); past them, sleep, which costs no CPU on a busy machine.
constexpr auto kJobSpin = std::chrono::microseconds(20);
constexpr auto kDoneSpin = std::chrono::microseconds(5);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or `budget` passes; true when done.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (int spin = 0;; ++spin) {
    if (done()) return true;
    cpu_relax();
    if ((spin & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads < 1) throw std::invalid_argument("ThreadPool: num_threads must be >= 1, got " + std::to_string(num_threads));
  // A worker may start after the first jobs (or the shutdown) were posted: it starts from generation 0.
  for (int t = 1; t < num_threads; ++t) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  job_posted_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::record_error() {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::current_exception();
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    if (stop_.load()) return;
    auto posted = [&] { return generation_.load() != seen; };
    if (!spin_until(posted, kJobSpin)) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      job_posted_.wait(lock, posted);
    }
    seen = generation_.load();
    if (stop_.load()) return;
    // Join only while the caller has not closed this generation (seq_cst on both sides: either we see
    // it closed, or the caller sees us active and waits for us).
    active_.fetch_add(1);
    if (open_.load() == seen) {
      try {
        (*job_)();
      } catch (...) {
        record_error();
      }
    }
    if (active_.fetch_sub(1) == 1) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }  // the caller is either before its check or asleep
      job_done_.notify_all();
    }
  }
}

void ThreadPool::run(const std::function<void()>& fn) {
  error_ = nullptr;
  if (!workers_.empty()) {
    job_ = &fn;
    const uint64_t next = generation_.load() + 1;
    open_.store(next);
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      generation_.store(next);
    }
    job_posted_.notify_all();
  }
  try {
    fn();
  } catch (...) {
    record_error();
  }
  if (!workers_.empty()) {
    open_.store(0);
    auto finished = [&] { return active_.load() == 0; };
    if (!spin_until(finished, kDoneSpin)) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      job_done_.wait(lock, finished);
    }
  }
  if (error_) std::rethrow_exception(error_);
}

}  // namespace moelab::rl
