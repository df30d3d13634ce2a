// CRC-32C: the published test vectors, the SSE4.2 path against the table-driven one, and checksummed
// safetensors files: every flipped data byte is caught and names the right tensor and byte range.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/io/safetensors.h"

using namespace moelab;
using namespace moelab::io;
namespace fs = std::filesystem;

namespace {

template <typename T> SafetensorsView view_of(std::string name, const std::vector<T>& v, std::vector<int64_t> shape) {
  return {std::move(name), dtype_of<T>::value, std::move(shape), v.data(), v.size() * sizeof(T), std::nullopt};
}

std::string parse_error(const std::string& bytes, const std::string& source = "ckpt.safetensors") {
  try {
    parse_safetensors(bytes, source);
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

using CrcFn = uint32_t (*)(const void*, size_t, uint32_t);

// RFC 3720 (iSCSI) appendix B.4 vectors and the common "123456789" check value.
void expect_known_vectors(CrcFn fn, const char* which) {
  EXPECT_EQ(fn("123456789", 9, 0), 0xE3069283u) << which;
  EXPECT_EQ(fn("", 0, 0), 0u) << which;
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) up[i] = static_cast<unsigned char>(i), down[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(fn(zeros.data(), 32, 0), 0x8A9136AAu) << which;
  EXPECT_EQ(fn(ones.data(), 32, 0), 0x62A8AB43u) << which;
  EXPECT_EQ(fn(up.data(), 32, 0), 0x46DD794Eu) << which;
  EXPECT_EQ(fn(down.data(), 32, 0), 0x113FDB5Cu) << which;
}

}  // namespace

TEST(Crc32c, KnownTestVectors) {
  expect_known_vectors(crc32c_portable, "portable");
  expect_known_vectors(crc32c_sse42, "sse4.2");
  expect_known_vectors(crc32c, "dispatch");
  EXPECT_EQ(crc32c_hex(0xE3069283u), "e3069283");
  EXPECT_EQ(crc32c_hex(0x0000000Au), "0000000a");
}

TEST(Crc32c, HardwarePathMatchesTablesOnEveryLengthAndAlignment) {
  if (!crc32c_has_sse42()) GTEST_SKIP() << "this CPU has no SSE4.2; only the portable path runs";
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(1100);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t start = 0; start < 9; ++start)
    for (size_t n = 0; n + start <= buf.size(); n += (n < 40 ? 1 : 37))
      ASSERT_EQ(crc32c_sse42(buf.data() + start, n), crc32c_portable(buf.data() + start, n)) << start << " " << n;
}

TEST(Crc32c, ContinuesAcrossChunks) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over and then some more.";
  const uint32_t whole = crc32c(text.data(), text.size());
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(crc32c(text.data() + cut, text.size() - cut, crc32c(text.data(), cut)), whole) << cut;
    EXPECT_EQ(crc32c_portable(text.data() + cut, text.size() - cut, crc32c_portable(text.data(), cut)), whole) << cut;
  }
}

TEST(SafetensorsChecksums, WrittenPerTensorAndKeptOutOfTheUserMetadata) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> step = {12};
  const std::string bytes = serialize_safetensors({view_of("w", w, {2, 3}), view_of("step", step, {})}, {{"k", "v"}});
  // The header carries them as plain strings, so other readers see ordinary metadata.
  EXPECT_NE(bytes.find("\"crc32c.w\":\"" + crc32c_hex(crc32c(w.data(), 24)) + "\""), std::string::npos);
  EXPECT_NE(bytes.find("\"crc32c.step\":\""), std::string::npos);
  SafetensorsFile f = parse_safetensors(bytes, "m.safetensors");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"k", "v"}}));
  EXPECT_EQ(f.checksums().at("w"), crc32c(w.data(), 24));
  EXPECT_EQ(f.checksums().size(), 2u);
  // A file written without checksums (an older checkpoint) reads unverified.
  SafetensorsFile old = parse_safetensors(serialize_safetensors({view_of("w", w, {2, 3})}, {{"k", "v"}}, Checksums::none), "old");
  EXPECT_TRUE(old.checksums().empty());
  EXPECT_EQ(old.get("w").to_vector<float>(), w);
  // The checksum keys are reserved.
  EXPECT_THROW(serialize_safetensors({view_of("w", w, {2, 3})}, {{"crc32c.w", "00000000"}}), SafetensorsError);
}

TEST(SafetensorsChecksums, EveryFlippedDataByteNamesItsTensorAndByteRange) {
  std::mt19937 rng(20);
  std::vector<double> a(37);
  std::vector<float> b(101), c(1);
  std::vector<int32_t> d(64);
  std::vector<int64_t> e(3);
  for (auto& x : a) x = std::uniform_real_distribution<double>(-1, 1)(rng);
  for (auto& x : b) x = std::uniform_real_distribution<float>(-1, 1)(rng);
  for (auto& x : d) x = static_cast<int32_t>(rng());
  c[0] = 3.5f;
  e = {1, -2, 3};
  const fs::path dir = fs::temp_directory_path() / ("moelab_test_checksums_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  write_safetensors(path, {view_of("blocks.0.a", a, {37}), view_of("blocks.0.b", b, {101}), view_of("c", c, {}),
                           view_of("ids", d, {8, 8}), view_of("counts", e, {3})},
                    {{"step", "5"}});
  const std::string good = read_file_bytes(path);
  const SafetensorsFile ref = read_safetensors(path);
  const size_t data_start = ref.tensors().front().file_offset;
  ASSERT_EQ(ref.checksums().size(), 5u);

  const int trials = 2000;
  for (int trial = 0; trial < trials; ++trial) {
    const size_t pos = data_start + rng() % (good.size() - data_start);
    const unsigned char mask = static_cast<unsigned char>(1u + rng() % 255u);  // any nonzero change
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ mask);
    const SafetensorsTensor* owner = nullptr;
    for (const auto& t : ref.tensors())
      if (pos >= t.file_offset && pos < t.file_offset + t.nbytes) owner = &t;
    ASSERT_NE(owner, nullptr) << pos;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;  // plain write: no fsync per trial
    try {
      read_safetensors(path);
      FAIL() << "a flip at byte " << pos << " (mask " << int(mask) << ") was not detected";
    } catch (const SafetensorsError& err) {
      const std::string m = err.what();
      const std::string range = "[" + std::to_string(owner->file_offset) + ", " +
                                std::to_string(owner->file_offset + owner->nbytes) + ")";
      ASSERT_NE(m.find(path + ": tensor '" + owner->name + "'"), std::string::npos) << m;
      ASSERT_NE(m.find(range), std::string::npos) << m;
      ASSERT_NE(m.find("CRC-32C"), std::string::npos) << m;
    }
  }
  fs::remove_all(dir);
}

TEST(SafetensorsChecksums, DamagedChecksumEntriesAreErrors) {
  std::vector<float> w = {1, 2};
  const std::string good = serialize_safetensors({view_of("w", w, {2}), view_of("v", w, {2})});
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);  // same length keeps the header length valid
  };
  const std::string wsum = crc32c_hex(crc32c(w.data(), 8));
  EXPECT_NE(parse_error(replace("\"crc32c.w\":\"" + wsum, "\"crc32c.w\":\"zz" + wsum.substr(2))).find("not 8 hexadecimal digits"),
            std::string::npos);
  EXPECT_NE(parse_error(replace("\"crc32c.w\"", "\"crc32c.x\"")).find("checksum 'crc32c.x' for a tensor the file does not have"),
            std::string::npos);
  EXPECT_NE(parse_error(replace("\"crc32c.w\"", "\"crc32d.w\"")).find("tensor 'w'"), std::string::npos);
  EXPECT_NE(parse_error(replace("\"crc32c.w\"", "\"crc32d.w\"")).find("has no checksum"), std::string::npos);
  // A changed stored value is a mismatch like a changed data byte.
  const char flipped = wsum[0] == '0' ? '1' : '0';
  std::string m = parse_error(replace("\"crc32c.w\":\"" + wsum, "\"crc32c.w\":\"" + std::string(1, flipped) + wsum.substr(1)));
  EXPECT_NE(m.find("tensor 'w'"), std::string::npos) << m;
  EXPECT_NE(m.find("fail their CRC-32C check"), std::string::npos) << m;
}
