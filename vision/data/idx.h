#pragma once
// IDX files (the MNIST format): big-endian header {0, 0, type, ndims} then ndims u32 sizes, then the
// payload. Read through zlib, so both .gz and plain files work. Every malformed input is an Error
// naming the path and what is wrong (bad magic, wrong type or rank, truncated or trailing data).
#include <cstdint>
#include <string>
#include <vector>

namespace moelab::vision {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. (N, 28, 28) for images, (N) for labels
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major
};

// Reads an unsigned-byte IDX array (type 0x08) of rank `expected_rank`; throws moelab::Error.
IdxArray read_idx_u8(const std::string& path, int expected_rank);

// Writes an unsigned-byte IDX array, gzip-compressed when `gzip` (tests generate small files with it).
void write_idx_u8(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data,
                  bool gzip = true);

}  // namespace moelab::vision
