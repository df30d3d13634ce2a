#pragma once
// OpenMP helpers for the cpu backend. Work is split into chunks whose boundaries depend only on the
// problem size (never on the thread count), and a single-threaded run visits the same chunks, so a
// chunked reduction adds its partial results in the same order for any number of threads.
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace moelab::cpu {

// Below this many elements a loop runs on one thread: the fork costs more than it saves.
constexpr int64_t kParallelGrain = 32768;
// Upper bound on the number of chunks of one loop (enough for load balance on any host).
constexpr int64_t kMaxChunks = 256;

// The chunk size parallel_for uses for n items and the given grain (depends on n and grain only).
inline int64_t chunk_size(int64_t n, int64_t grain) {
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::clamp<int64_t>((n + grain - 1) / grain, 1, kMaxChunks);
  return (n + chunks - 1) / chunks;
}

// Calls f(chunk_index, begin, end) for fixed chunks of `step` items covering [0, n), in parallel when
// there is more than one chunk and more than one thread.
template <typename F>
void parallel_chunks(int64_t n, int64_t step, F&& f) {
  if (n <= 0) return;
  step = std::max<int64_t>(step, 1);
  int64_t chunks = (n + step - 1) / step;
  if (chunks == 1 || omp_get_max_threads() == 1 || omp_in_parallel()) {
    for (int64_t c = 0; c < chunks; ++c) f(c, c * step, std::min(n, (c + 1) * step));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) f(c, c * step, std::min(n, (c + 1) * step));
}

// Calls f(begin, end) over [0, n) in chunks of at least `grain` items (see chunk_size).
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  parallel_chunks(n, chunk_size(n, grain), [&](int64_t, int64_t b, int64_t e) { f(b, e); });
}

// A grain in rows for row-wise kernels: about kParallelGrain elements per chunk.
inline int64_t row_grain(int64_t row_len) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1));
}

}  // namespace moelab::cpu
