#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of safetensors tensors. The
// SSE4.2 crc32 instruction is used when the CPU has it; a table-driven loop serves everywhere else.
#include <cstddef>
#include <cstdint>
#include <string>

namespace moelab::io {

// CRC of `n` bytes continuing from `crc` (0 to start): crc32c(b, crc32c(a)) == crc32c(a + b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// The two implementations, callable directly so that tests can compare them.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);
uint32_t crc32c_sse42(const void* data, size_t n, uint32_t crc = 0);  // falls back when unsupported
bool crc32c_has_sse42();

std::string crc32c_hex(uint32_t crc);  // 8 lowercase hex digits: "e3069283"

}  // namespace moelab::io
