#include "core/util/rng.h"

#include "core/util/philox.h"

namespace moelab {

uint64_t hash_stream_key(uint64_t seed, std::string_view name) {
  // FNV-1a over the name, mixed with the seed by splitmix64's finalizer.
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (h | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double RngStream::uniform() { return philox::uniform_at(key_, advance(1)); }
double RngStream::normal() { return philox::normal_at(key_, advance(1)); }
uint64_t RngStream::below(uint64_t n) {
  uint64_t v = static_cast<uint64_t>(uniform() * static_cast<double>(n));
  return v < n ? v : n - 1;
}

}  // namespace moelab
