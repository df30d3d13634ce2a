#pragma once
// A small fork-join pool for stepping environments: run(fn) calls fn(t) for t in [0, size()) — t = 0 on
// the calling thread — and returns when all are done. Workers spin briefly, then sleep on an atomic.
#include <atomic>
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
  // Rethrows the first exception thrown by any fn(t).
  void run(const std::function<void(int)>& fn);

 private:
  void worker_loop(int index);
  void record_error();

  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace moelab::rl
