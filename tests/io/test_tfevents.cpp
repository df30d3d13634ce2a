// TensorBoard event files: CRC-32C known answers, exact record bytes, write-then-read, corruption.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/io/atomic_file.h"
#include "core/io/tfevents.h"

using namespace moelab::io;
namespace fs = std::filesystem;

namespace {

// Removes this program's temporary directory when all tests are done.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::temp_directory_path() / ("moelab_test_tfevents_" + std::to_string(::getpid()))); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moelab_test_tfevents_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

// A clock the test advances by hand.
struct FakeClock {
  double t = 1700000000.25;
  std::function<double()> fn() {
    return [this] { return t; };
  }
};

}  // namespace

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  // 32 zero bytes: a published CRC-32C check value (RFC 3720, B.4).
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  // Extending over pieces equals one pass.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
}

TEST(Crc32c, MaskFormulaAndInverse) {
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(mask_crc32c(c), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  for (uint32_t v : {0u, 1u, 0xffffffffu, 0x12345678u, c}) EXPECT_EQ(unmask_crc32c(mask_crc32c(v)), v);
}

TEST(TfEvents, RecordAndEventBytesAreExact) {
  // Event{wall_time = 2.0, file_version = "brain.Event:2"}: key 0x09 + fixed64, key 0x1A + length + text.
  double two = 2.0;
  std::string expected_payload = "\x09" + std::string(reinterpret_cast<const char*>(&two), 8) + "\x1A\x0D" "brain.Event:2";
  EXPECT_EQ(encode_file_version_event(2.0), expected_payload);

  // Event{wall_time = 2.0, step = 300, summary {value {tag = "a", simple_value = 1.5}}}.
  float v = 1.5f;
  std::string value = "\x0A\x01" "a" "\x15" + std::string(reinterpret_cast<const char*>(&v), 4);
  std::string summary = "\x0A" + std::string(1, char(value.size())) + value;
  std::string scalar = "\x09" + std::string(reinterpret_cast<const char*>(&two), 8) + "\x10\xAC\x02" + "\x2A" +
                       std::string(1, char(summary.size())) + summary;
  EXPECT_EQ(encode_scalar_event(2.0, 300, {{"a", 1.5f}}), scalar);

  std::string record = frame_record(expected_payload);
  std::string framed = le64(expected_payload.size()) + le32(mask_crc32c(crc32c(le64(expected_payload.size())))) +
                       expected_payload + le32(mask_crc32c(crc32c(expected_payload)));
  EXPECT_EQ(record, framed);
  EXPECT_EQ(record.size(), 12 + expected_payload.size() + 4);
}

TEST(TfEvents, FileNameFollowsTensorFlow) {
  EXPECT_EQ(event_file_name(1700000000.9, "box", 42), "events.out.tfevents.1700000000.box.42");
  EXPECT_EQ(event_file_name(12.0, "h", 7), "events.out.tfevents.0000000012.h.7");
}

TEST(TfEvents, WriteThenRead) {
  FakeClock clock;
  const fs::path dir = fresh_dir("roundtrip");
  std::string path;
  {
    EventWriter w(dir, {.flush_interval_s = 0, .clock = clock.fn(), .host = "testhost"});
    path = w.path();
    EXPECT_EQ(fs::path(path).filename().string(), "events.out.tfevents.1700000000.testhost." + std::to_string(::getpid()));
    clock.t += 1;
    w.add_scalar("train/loss", 10, 2.5);
    clock.t += 1;
    w.add_scalars(20, {{"train/loss", 2.25}, {"moe/load_cv/blocks.3.moe", 0.125}});
    w.add_scalar("train/step_neg", -3, -1.0);
  }
  EventFileContents c = read_event_file(path);
  ASSERT_EQ(c.events.size(), 4u);
  EXPECT_FALSE(c.truncated_tail);
  EXPECT_EQ(c.events[0].file_version, "brain.Event:2");
  EXPECT_DOUBLE_EQ(c.events[0].wall_time, 1700000000.25);
  EXPECT_EQ(c.events[1].step, 10);
  ASSERT_EQ(c.events[1].scalars.size(), 1u);
  EXPECT_EQ(c.events[1].scalars[0].tag, "train/loss");
  EXPECT_FLOAT_EQ(c.events[1].scalars[0].value, 2.5f);
  EXPECT_DOUBLE_EQ(c.events[1].wall_time, 1700000001.25);
  EXPECT_EQ(c.events[2].step, 20);
  ASSERT_EQ(c.events[2].scalars.size(), 2u);
  EXPECT_EQ(c.events[2].scalars[1].tag, "moe/load_cv/blocks.3.moe");
  EXPECT_FLOAT_EQ(c.events[2].scalars[1].value, 0.125f);
  EXPECT_EQ(c.events[3].step, -3);
  EXPECT_EQ(c.events[3].file_offset, c.events[2].file_offset + 12 + 4 +
                                         encode_scalar_event(0, 20, {{"train/loss", 0}, {"moe/load_cv/blocks.3.moe", 0}}).size());
}

TEST(TfEvents, SecondWriterInSameSecondGetsItsOwnFile) {
  FakeClock clock;
  const fs::path dir = fresh_dir("two");
  EventWriter a(dir, {.clock = clock.fn(), .host = "h"});
  EventWriter b(dir, {.clock = clock.fn(), .host = "h"});
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(b.path(), a.path() + ".1");
}

TEST(TfEvents, FlushPolicyFollowsTheClock) {
  FakeClock clock;
  const fs::path dir = fresh_dir("flush");
  EventWriter w(dir, {.flush_interval_s = 5, .clock = clock.fn(), .host = "h"});
  const auto version_size = fs::file_size(w.path());
  EXPECT_EQ(version_size, 12 + encode_file_version_event(0).size() + 4);  // flushed at once
  clock.t += 1;
  w.add_scalar("a", 1, 1.0);
  EXPECT_EQ(fs::file_size(w.path()), version_size);  // buffered: under 5 s since the last flush
  clock.t += 5;
  w.add_scalar("a", 2, 2.0);
  EXPECT_GT(fs::file_size(w.path()), version_size);  // both records now on disk
  EXPECT_EQ(read_event_file(w.path()).events.size(), 3u);
}

TEST(TfEvents, CorruptedBytesAreDetected) {
  FakeClock clock;
  const fs::path dir = fresh_dir("corrupt");
  std::string path;
  {
    EventWriter w(dir, {.clock = clock.fn(), .host = "h"});
    w.add_scalar("train/loss", 1, 3.0);
    path = w.path();
  }
  const std::string good = read_file_bytes(path);
  const size_t second = 12 + encode_file_version_event(0).size() + 4;

  std::string bad_payload = good;
  bad_payload[second + 14] ^= 0x01;  // a byte inside the second record's payload
  try {
    parse_event_file(bad_payload, "ev");
    FAIL() << "expected a CRC error";
  } catch (const EventFileError& e) {
    EXPECT_NE(std::string(e.what()).find("ev: record 1 at byte " + std::to_string(second) + ": payload CRC mismatch"),
              std::string::npos)
        << e.what();
  }
  std::string bad_length = good;
  bad_length[second] ^= 0x40;
  try {
    parse_event_file(bad_length, "ev");
    FAIL() << "expected a CRC error";
  } catch (const EventFileError& e) {
    EXPECT_NE(std::string(e.what()).find("record 1 at byte " + std::to_string(second) + ": length CRC mismatch"),
              std::string::npos)
        << e.what();
  }
  std::string bad_crc = good;
  bad_crc.back() ^= 0x01;  // the stored payload CRC itself
  EXPECT_THROW(parse_event_file(bad_crc, "ev"), EventFileError);
}

TEST(TfEvents, TruncatedTailIsAnErrorUnlessAllowed) {
  std::string bytes = frame_record(encode_file_version_event(1.0)) + frame_record(encode_scalar_event(1.0, 5, {{"x", 1}}));
  std::string cut = bytes.substr(0, bytes.size() - 3);
  try {
    parse_event_file(cut, "ev");
    FAIL();
  } catch (const EventFileError& e) {
    EXPECT_NE(std::string(e.what()).find("record 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EventFileContents c = parse_event_file(cut, "ev", /*allow_truncated_tail=*/true);
  EXPECT_TRUE(c.truncated_tail);
  EXPECT_EQ(c.events.size(), 1u);
}

TEST(TfEvents, MalformedMessageInsideValidFraming) {
  // CRCs are right but the payload says "field 1 is a varint" where a double belongs.
  std::string payload = "\x08\x01";
  try {
    parse_event_file(frame_record(payload), "ev");
    FAIL();
  } catch (const EventFileError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed Event message: field Event.wall_time has wire type 0"),
              std::string::npos)
        << e.what();
  }
}

TEST(TfEvents, EveryByteFlipIsDetected) {
  const std::string good = frame_record(encode_file_version_event(1.0)) +
                           frame_record(encode_scalar_event(2.0, 7, {{"train/loss", 1.5f}}));
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x10;
    EXPECT_THROW(parse_event_file(bad, "ev"), EventFileError) << "byte " << i;
  }
}
