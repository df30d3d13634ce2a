// safetensors: round trips, the reference writer's exact bytes, and every kind of malformed file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"

using namespace moelab;
using namespace moelab::io;
namespace fs = std::filesystem;

namespace {

// Removes this program's temporary directory when all tests are done.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::temp_directory_path() / ("moelab_test_safetensors_" + std::to_string(::getpid()))); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("moelab_test_safetensors_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string u64_le(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }

// A file with the given header text (padded to 8 bytes with spaces when `pad`) and data buffer.
std::string make_file(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return u64_le(header.size()) + header + data;
}

// The message of the SafetensorsError that parsing `bytes` throws ("" when it does not throw).
std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "";
}

template <typename T> SafetensorsView view_of(std::string name, const std::vector<T>& v, std::vector<int64_t> shape) {
  return {std::move(name), dtype_of<T>::value, std::move(shape), v.data(), v.size() * sizeof(T), std::nullopt};
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypesScalarsAndEmpty) {
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  std::vector<double> f64 = {3.141592653589793};
  std::vector<int32_t> i32 = {-7, 8, 2147483647};
  std::vector<int64_t> i64 = {-9223372036854775807LL, 42};
  std::vector<float> none;
  const fs::path path = temp_dir() / "round_trip.safetensors";
  write_safetensors(path, {view_of("blocks.0.w", f32, {2, 3}), view_of("pi", f64, {}), view_of("ids", i32, {3}),
                           view_of("counters", i64, {1, 2}), view_of("empty", none, {0, 4})},
                    {{"step", "100"}, {"config", "[model]\nd = 4\n"}});
  SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f.get("blocks.0.w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.get("blocks.0.w").dtype(), DType::f32);
  EXPECT_EQ(f.get("blocks.0.w").to_vector<float>(), f32);
  EXPECT_TRUE(f.get("pi").shape.empty());
  EXPECT_EQ(f.get("pi").numel(), 1);
  EXPECT_EQ(f.get("pi").to_vector<double>(), f64);
  EXPECT_EQ(f.get("ids").to_vector<int32_t>(), i32);
  EXPECT_EQ(f.get("counters").to_vector<int64_t>(), i64);
  EXPECT_EQ(f.get("empty").numel(), 0);
  EXPECT_EQ(f.get("empty").nbytes, 0u);
  EXPECT_EQ(f.get("empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(f.metadata_value("step"), "100");
  EXPECT_EQ(f.metadata_value("config"), "[model]\nd = 4\n");
  EXPECT_EQ(f.metadata_or("missing", "x"), "x");
  for (const auto& t : f.tensors()) EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 8, 0u) << t.name;
  // Reference order: 8-byte dtypes first (I64 before F64), then F32, then I32; names ascending within.
  EXPECT_EQ(f.names(), (std::vector<std::string>{"counters", "pi", "blocks.0.w", "empty", "ids"}));
  EXPECT_THROW(f.get("ids").to_vector<float>(), SafetensorsError);
  fs::remove_all(path.parent_path());
}

TEST(Safetensors, ByteExactKnownFile) {
  // Written by hand from the format: F32 tensor "attn0" of shape [1, 1, 2, 3] holding 0..5. The
  // 65-byte JSON is padded with 7 spaces to 72 so that the data starts 8-aligned.
  std::vector<float> values = {0, 1, 2, 3, 4, 5};
  const std::string expected_header = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(expected_header.size(), 65u);
  const std::string data_bytes = std::string("\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00\x40", 12) +
                                 std::string("\x00\x00\x40\x40\x00\x00\x80\x40\x00\x00\xa0\x40", 12);
  const std::string expected = std::string("\x48\x00\x00\x00\x00\x00\x00\x00", 8) + expected_header +
                               std::string(7, ' ') + data_bytes;
  EXPECT_EQ(serialize_safetensors({view_of("attn0", values, {1, 1, 2, 3})}, {}, Checksums::none), expected);

  // With metadata: "__metadata__" comes first; an empty file pads "{}" to 8 bytes (and has no checksums).
  const std::string meta = serialize_safetensors({}, {{"framework", "pt"}});
  EXPECT_EQ(meta, u64_le(40) + R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
  EXPECT_EQ(serialize_safetensors({}), u64_le(8) + "{}      ");

  SafetensorsFile back = parse_safetensors(expected, "known");
  EXPECT_EQ(back.get("attn0").to_vector<float>(), values);
}

TEST(Safetensors, ReadsUnpaddedHeadersAndRawDtypes) {
  // An MLX-style file: header not padded (so the data buffer starts at byte 8 + 77), BF16 and U8 carried raw.
  const std::string header =
      R"({"h":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"m":{"dtype":"U8","shape":[3],"data_offsets":[4,7]}})";
  const std::string data = std::string("\x80\x3f\x00\x40", 4) + std::string("\x01\x02\x03", 3);
  const std::string bytes = make_file(header, data, /*pad=*/false);
  SafetensorsFile f = parse_safetensors(bytes, "mlx.safetensors");
  const SafetensorsTensor& h = f.get("h");
  EXPECT_EQ(h.st_dtype, StDType::BF16);
  EXPECT_FALSE(h.has_dtype());
  EXPECT_THROW((void)h.dtype(), SafetensorsError);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(h.data) % 8, 0u);
  EXPECT_EQ(std::memcmp(h.data, data.data(), 4), 0);
  EXPECT_EQ(f.get("m").nbytes, 3u);
  // Writing the raw tensors back keeps dtype and bytes; the reference order puts BF16 before U8.
  SafetensorsFile again = parse_safetensors(serialize_safetensors({h.view(), f.get("m").view()}), "again");
  EXPECT_EQ(again.get("h").st_dtype, StDType::BF16);
  EXPECT_EQ(std::memcmp(again.get("m").data, "\x01\x02\x03", 3), 0);
  EXPECT_EQ(again.names(), (std::vector<std::string>{"h", "m"}));
}

TEST(Safetensors, AtomicWriteReplacesAndLeavesNoTemporaries) {
  const fs::path dir = temp_dir() / "atomic";
  fs::create_directories(dir);
  const fs::path path = dir / "model.safetensors";
  std::vector<int64_t> a = {1}, b = {2, 3};
  write_safetensors(path, {view_of("x", a, {1})});
  write_safetensors(path, {view_of("x", b, {2})});
  EXPECT_EQ(read_safetensors(path).get("x").to_vector<int64_t>(), b);
  // A failing write (bad byte count) leaves the old file in place and no temporary behind.
  SafetensorsView bad = view_of("x", b, {3});
  EXPECT_THROW(write_safetensors(path, {bad}), SafetensorsError);
  EXPECT_EQ(read_safetensors(path).get("x").to_vector<int64_t>(), b);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  fs::remove_all(dir);
}

TEST(Safetensors, WriterRejectsInvalidRequests) {
  std::vector<float> v = {1, 2};
  auto message = [](const std::vector<SafetensorsView>& views) {
    try {
      serialize_safetensors(views);
    } catch (const SafetensorsError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  {
    std::string m = message({view_of("w", v, {3})});
    EXPECT_NE(m.find("tensor 'w'"), std::string::npos) << m;
    EXPECT_NE(m.find("need 12"), std::string::npos) << m;
  }
  EXPECT_NE(message({view_of("w", v, {2}), view_of("w", v, {2})}).find("duplicate"), std::string::npos);
  EXPECT_NE(message({view_of("__metadata__", v, {2})}).find("not a valid tensor name"), std::string::npos);
  EXPECT_NE(message({view_of("w", v, {-2})}).find("negative"), std::string::npos);
}

TEST(Safetensors, LookupSuggestsNearestName) {
  std::vector<float> v = {1};
  SafetensorsFile f = parse_safetensors(serialize_safetensors({view_of("blocks.0.moe.w1", v, {1})}), "m.safetensors");
  try {
    f.get("blocks.0.moe.w2");
    FAIL() << "expected an error";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("m.safetensors: no tensor named 'blocks.0.moe.w2'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("did you mean 'blocks.0.moe.w1'"), std::string::npos);
  }
}

// ---- malformed files: each message names the file, the tensor (where there is one) and the byte ----

TEST(SafetensorsMalformed, TooShortForHeaderLength) {
  std::string m = parse_error("abc");
  EXPECT_NE(m.find("bad.safetensors: at byte 0: file is 3 bytes long"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, HeaderLengthBeyondFile) {
  std::string m = parse_error(u64_le(1000) + "{}      ");
  EXPECT_NE(m.find("at byte 0: header length 1000 runs past the end of the file (16 bytes)"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, HeaderLargerThan100MB) {
  std::string m = parse_error(u64_le(100'000'001) + "{}      ");
  EXPECT_NE(m.find("header length 100000001 exceeds the limit of 100000000 bytes"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, HeaderNotAnObject) {
  EXPECT_NE(parse_error(make_file("[1, 2]", "")).find("at byte 8: the header must begin with '{'"), std::string::npos);
  EXPECT_NE(parse_error(make_file("{\"a\": 1} x", "")).find("not valid JSON"), std::string::npos);
}

TEST(SafetensorsMalformed, BadJsonNamesTheByte) {
  // The parser stops on the '}' after the stray comma: header byte 20 (0-based), file byte 28.
  const std::string header = R"({"a":{"dtype":"F32",}})";
  std::string m = parse_error(make_file(header, ""));
  EXPECT_NE(m.find("bad.safetensors: at byte 28: the header is not valid JSON"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, ByteCountMismatch) {
  // Key "a" starts at header byte 1, file byte 9.
  std::string m = parse_error(make_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", std::string(20, '\0')));
  EXPECT_NE(m.find("bad.safetensors: tensor 'a' at byte 9: data_offsets [0,20] hold 20 bytes but dtype F32 and "
                   "shape [2, 3] need 24 bytes"),
            std::string::npos)
      << m;
}

TEST(SafetensorsMalformed, OverlappingOffsets) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string m = parse_error(make_file(header, std::string(12, '\0')));
  // The header is 109 bytes padded to 112, so the data buffer starts at byte 120; "b" starts at 124.
  EXPECT_NE(m.find("tensor 'b' at byte 124: data [124, 132) overlaps tensor 'a' [120, 128)"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, HoleInDataBuffer) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})";
  std::string m = parse_error(make_file(header, std::string(20, '\0')));
  EXPECT_NE(m.find("tensor 'b' at byte 128: the data buffer has a hole: bytes [128, 132) belong to no tensor "
                   "(between 'a' and 'b')"),
            std::string::npos)
      << m;
}

TEST(SafetensorsMalformed, TrailingBytes) {
  std::string m = parse_error(make_file(R"({"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", std::string(6, '\0')));
  EXPECT_NE(m.find("2 bytes at the end of the file belong to no tensor (after 'a')"), std::string::npos) << m;
}

TEST(SafetensorsMalformed, TruncatedData) {
  std::vector<double> v = {1, 2, 3};
  std::string bytes = serialize_safetensors({view_of("w", v, {3})});
  const size_t full = bytes.size();
  bytes.resize(full - 5);
  std::string m = parse_error(bytes);
  EXPECT_NE(m.find("tensor 'w' at byte " + std::to_string(full - 24) + ": data [" + std::to_string(full - 24) + ", " +
                   std::to_string(full) + ") runs past the end of the file (" + std::to_string(full - 5) + " bytes)"),
            std::string::npos)
      << m;
}

TEST(SafetensorsMalformed, DuplicateNames) {
  const std::string entry = R"({"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  const std::string header = "{\"a\":" + entry + ",\"a\":" + entry + "}";
  std::string m = parse_error(make_file(header, ""));
  EXPECT_NE(m.find("at byte " + std::to_string(8 + 5 + entry.size() + 1) + ": duplicate name 'a'"), std::string::npos) << m;
  std::string inner = parse_error(make_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[0],"data_offsets":[0,0]}})", ""));
  EXPECT_NE(inner.find("duplicate field 'dtype' inside the entry of 'a'"), std::string::npos) << inner;
}

TEST(SafetensorsMalformed, NonStringMetadata) {
  std::string m = parse_error(make_file(R"({"__metadata__":{"step":3}})", ""));
  EXPECT_NE(m.find("at byte 9: __metadata__ entry 'step' is integer 3; metadata values must be strings"),
            std::string::npos)
      << m;
  EXPECT_NE(parse_error(make_file(R"({"__metadata__":[1]})", "")).find("__metadata__ must be an object"), std::string::npos);
}

TEST(SafetensorsMalformed, BadEntries) {
  auto check = [](const std::string& entry, const std::string& expect) {
    std::string m = parse_error(make_file("{\"t\":" + entry + "}", std::string(8, '\0')));
    EXPECT_NE(m.find("bad.safetensors: tensor 't' at byte 9: "), std::string::npos) << m;
    EXPECT_NE(m.find(expect), std::string::npos) << m;
  };
  check(R"({"dtype":"F7","shape":[2],"data_offsets":[0,8]})", "unsupported dtype \"F7\"");
  check(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", "shape [-2] must hold non-negative integers");
  check(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})", "must hold non-negative integers");
  check(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", "data_offsets must be [BEGIN, END]");
  check(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", "end before they begin");
  check(R"({"dtype":"F32","shape":[2]})", "missing field 'data_offsets'");
  check(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1})", "unexpected field 'extra'");
  check(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})", "too large");
  check("5", "entry must be an object");
}

TEST(SafetensorsMalformed, MissingFileIsAnError) {
  try {
    read_safetensors("/nonexistent/dir/x.safetensors");
    FAIL();
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.safetensors: cannot open"), std::string::npos);
  }
}

TEST(SafetensorsMalformed, EveryTruncationAndByteFlipIsRejectedCleanly) {
  std::vector<float> a = {1, 2, 3};
  std::vector<int64_t> b = {7};
  const std::string good = serialize_safetensors({view_of("a", a, {3}), view_of("b", b, {})}, {{"k", "v"}});
  for (size_t n = 0; n < good.size(); ++n) EXPECT_NE(parse_error(good.substr(0, n)), "") << "prefix " << n;
  // Flipping any header byte must either still parse or give a SafetensorsError, never another failure.
  size_t rejected = 0;
  for (size_t i = 0; i < good.size() - 20; ++i)
    for (unsigned char mask : {0x01, 0x20, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      try {
        parse_safetensors(bad, "flip");
      } catch (const SafetensorsError&) {
        ++rejected;
      }
    }
  EXPECT_GT(rejected, good.size());
}
