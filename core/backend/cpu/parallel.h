#pragma once
// OpenMP helpers for the cpu backend. Work is split into fixed chunks (independent of the thread
// count), so a chunked reduction adds its partial results in the same order for any number of threads.
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace moelab::cpu {

// Below this many elements a loop runs on one thread: the fork costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

// Calls f(begin, end) over [0, n) in chunks of at least `grain`, in parallel when n is large.
template <typename F> void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (n <= grain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, int64_t(omp_get_max_threads()) * 4);
  int64_t step = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) f(b, e);
  }
}

}  // namespace moelab::cpu
