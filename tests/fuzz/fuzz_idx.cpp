// libFuzzer target: IDX reading (plain and gzip-compressed), through a temporary file as in real use.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/util/check.h"
#include "vision/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string path = "/tmp/moelab_fuzz_idx_" + std::to_string(::getpid()) + ".idx";
  const int rank = 1 + data[0] % 3;  // labels (1), images (3), and rank 2
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data + 1, 1, size - 1, f);
  std::fclose(f);
  try {
    moelab::vision::IdxArray a = moelab::vision::read_idx_u8(path, rank);
    int64_t n = 1;
    for (int64_t d : a.dims) n *= d;
    if (static_cast<size_t>(n) != a.data.size()) __builtin_trap();
  } catch (const moelab::Error&) {
  }
  return 0;
}
