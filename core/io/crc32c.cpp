// CRC-32C: slicing-by-8 tables (portable) and the SSE4.2 crc32 instruction (x86-64, chosen at run time).
#include "core/io/crc32c.h"

#include <array>
#include <cstring>

namespace moelab::io {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // Castagnoli polynomial, bit-reflected

// tables[k][b]: the CRC of byte b followed by k zero bytes, for processing 8 bytes per step.
constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPoly : 0u);
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b)
    for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}
constexpr auto kTables = make_tables();

}  // namespace

uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian host (safetensors.cpp asserts it)
    const uint32_t lo = static_cast<uint32_t>(word) ^ c, hi = static_cast<uint32_t>(word >> 32);
    c = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^ kTables[4][lo >> 24] ^
        kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^ kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
  return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

bool crc32c_has_sse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(const unsigned char* p, size_t n, uint32_t crc) {
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}

uint32_t crc32c_sse42(const void* data, size_t n, uint32_t crc) {
  if (!crc32c_has_sse42()) return crc32c_portable(data, n, crc);
  return crc32c_hw(static_cast<const unsigned char*>(data), n, crc);
}

#else

bool crc32c_has_sse42() { return false; }
uint32_t crc32c_sse42(const void* data, size_t n, uint32_t crc) { return crc32c_portable(data, n, crc); }

#endif

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  return crc32c_has_sse42() ? crc32c_sse42(data, n, crc) : crc32c_portable(data, n, crc);
}

std::string crc32c_hex(uint32_t crc) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, crc >>= 4) out[static_cast<size_t>(i)] = kDigits[crc & 0xF];
  return out;
}

}  // namespace moelab::io
