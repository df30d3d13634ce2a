#pragma once
// Named random streams derived from one config seed (docs/architecture.md §2): RngStream(seed, "init"),
// RngStream(seed, "data"), ... Each stream is a Philox key plus a counter that advances by the
// number of values drawn; saving (key, counter) in a checkpoint restores it exactly.
#include <cstdint>
#include <string_view>

namespace moelab {

uint64_t hash_stream_key(uint64_t seed, std::string_view name);

class RngStream {
 public:
  RngStream() = default;
  RngStream(uint64_t seed, std::string_view name) : key_(hash_stream_key(seed, name)) {}
  static RngStream from_state(uint64_t key, uint64_t counter) {
    RngStream s;
    s.key_ = key;
    s.counter_ = counter;
    return s;
  }
  uint64_t key() const { return key_; }
  uint64_t counter() const { return counter_; }
  // Reserves n draws and returns the counter offset of the first (kernels draw offset + i).
  uint64_t advance(uint64_t n) {
    uint64_t o = counter_;
    counter_ += n;
    return o;
  }
  double uniform();            // [0, 1)
  double normal();             // N(0, 1)
  uint64_t below(uint64_t n);  // uniform integer in [0, n)
  // A child stream, e.g. per worker or per environment.
  RngStream fork(std::string_view name) const { return RngStream(key_ ^ 0x9E3779B97F4A7C15ull, name); }

 private:
  uint64_t key_ = 0, counter_ = 0;
};

}  // namespace moelab
