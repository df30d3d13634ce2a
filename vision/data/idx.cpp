#include "vision/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <memory>

#include "core/util/check.h"

namespace moelab::vision {
namespace {

constexpr uint8_t kTypeU8 = 0x08;
// Larger than any image set this sandbox reads; protects against allocating from a corrupt header.
constexpr int64_t kMaxPayloadBytes = int64_t{1} << 32;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to n bytes; returns how many were read; throws on a zlib error (corrupt or truncated .gz).
int64_t read_some(gzFile f, const std::string& path, uint8_t* dst, int64_t n) {
  int64_t total = 0;
  while (total < n) {
    unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - total, int64_t{1} << 30));
    int got = gzread(f, dst + total, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      MOELAB_FAIL("IDX file " << path << ": cannot decompress (" << (msg ? msg : "zlib error")
                              << "); the file is corrupt or truncated");
    }
    if (got == 0) break;
    total += got;
  }
  return total;
}

}  // namespace

IdxArray read_idx_u8(const std::string& path, int expected_rank) {
  GzHandle f(gzopen(path.c_str(), "rb"));
  MOELAB_CHECK(f, "cannot open IDX file " << path);
  uint8_t magic[4];
  int64_t got = read_some(f.get(), path, magic, 4);
  MOELAB_CHECK(got == 4, "IDX file " << path << ": truncated header (" << got << " of 4 magic bytes)");
  MOELAB_CHECK(magic[0] == 0 && magic[1] == 0,
               "IDX file " << path << ": bad magic (first two bytes must be 0, got " << int(magic[0]) << ", "
                           << int(magic[1]) << "); not an IDX file");
  MOELAB_CHECK(magic[2] == kTypeU8, "IDX file " << path << ": element type 0x" << std::hex << int(magic[2])
                                                << std::dec << " is not unsigned byte (0x08)");
  MOELAB_CHECK(magic[3] == expected_rank, "IDX file " << path << ": rank " << int(magic[3]) << ", expected "
                                                      << expected_rank);
  IdxArray out;
  int64_t payload = 1;
  for (int i = 0; i < expected_rank; ++i) {
    uint8_t b[4];
    got = read_some(f.get(), path, b, 4);
    MOELAB_CHECK(got == 4, "IDX file " << path << ": truncated header (size of dimension " << i << ")");
    int64_t d = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    MOELAB_CHECK(d > 0, "IDX file " << path << ": dimension " << i << " has size 0");
    MOELAB_CHECK(d <= kMaxPayloadBytes / payload,
                 "IDX file " << path << ": header declares more than " << kMaxPayloadBytes << " bytes");
    payload *= d;
    out.dims.push_back(d);
  }
  // The buffer grows as bytes arrive (chunks doubling from 64 KiB to 16 MiB): a damaged 20-byte header
  // must not allocate gigabytes up front.
  int64_t chunk = int64_t{64} << 10;
  got = 0;
  while (got < payload) {
    const int64_t want = std::min(chunk, payload - got);
    out.data.resize(static_cast<size_t>(got + want));
    const int64_t n = read_some(f.get(), path, out.data.data() + got, want);
    got += n;
    if (n < want) break;
    chunk = std::min(chunk * 2, int64_t{16} << 20);
  }
  MOELAB_CHECK(got == payload, "IDX file " << path << ": truncated payload (" << got << " of " << payload
                                           << " bytes declared by the header)");
  uint8_t extra;
  MOELAB_CHECK(read_some(f.get(), path, &extra, 1) == 0,
               "IDX file " << path << ": trailing bytes after the " << payload << "-byte payload");
  return out;
}

void write_idx_u8(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data,
                  bool gzip) {
  std::vector<uint8_t> bytes = {0, 0, kTypeU8, static_cast<uint8_t>(dims.size())};
  for (int64_t d : dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>((d >> s) & 0xff));
  bytes.insert(bytes.end(), data.begin(), data.end());
  gzFile f = gzopen(path.c_str(), gzip ? "wb" : "wbT");
  MOELAB_CHECK(f, "cannot create IDX file " << path);
  int wrote = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  int closed = gzclose(f);
  MOELAB_CHECK(wrote == static_cast<int>(bytes.size()) && closed == Z_OK, "cannot write IDX file " << path);
}

}  // namespace moelab::vision
