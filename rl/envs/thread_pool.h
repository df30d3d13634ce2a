#pragma once
// A small fork-join pool for stepping environments: run(fn) runs fn on the caller and every worker
// that wakes in time, fn sharing out work through its own counter. Design: docs/rl.md (The thread pool).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moelab::rl {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);  // total threads, the caller included; at least 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Returns once fn() has returned on the caller and on every worker that joined; rethrows the first
  // exception thrown by any of them.
  void run(const std::function<void()>& fn);

 private:
  void worker_loop();
  void record_error();

  std::vector<std::thread> workers_;
  const std::function<void()>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // bumped once per run (and at shutdown)
  std::atomic<uint64_t> open_{0};        // the generation workers may still join; 0 = closed
  std::atomic<int> active_{0};           // workers inside the current job
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable job_posted_, job_done_;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace moelab::rl
