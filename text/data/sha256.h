#pragma once
// SHA-256 (FIPS 180-4), used for the corpus checksums and the split/selection hashes, which must be the same
// on every machine.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moelab::text {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t nbytes);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::array<uint8_t, 32> digest();  // finishes the hash; the object must not be updated afterwards

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex of the SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
std::string to_hex(const uint8_t* bytes, size_t n);

}  // namespace moelab::text
