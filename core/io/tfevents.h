#pragma once
// TensorBoard event files without protobuf: length-prefixed records with masked CRC-32Cs, each an Event of
// wall_time, step and a file_version or a Summary of {tag, simple_value}. Byte layout: docs/formats.md §2.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/io/crc32c.h"
#include "core/util/check.h"

namespace moelab::io {

// CRC-32C (core/io/crc32c.h) of a whole string.
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }
// TensorFlow's masking: ((crc >> 15) | (crc << 17)) + 0xa282ead8, and its inverse.
uint32_t mask_crc32c(uint32_t crc);
uint32_t unmask_crc32c(uint32_t masked);

// One framed record (length, masked CRCs) around `payload`.
std::string frame_record(std::string_view payload);
// Event payloads (protobuf wire format).
std::string encode_file_version_event(double wall_time, std::string_view version = "brain.Event:2");
std::string encode_scalar_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& values);

// "events.out.tfevents.<10-digit seconds>.<host>.<pid>"
std::string event_file_name(double wall_time, const std::string& host, long pid);

// Corrupt or truncated event files; what() names the file, the record number and its byte offset.
class EventFileError : public Error {
 public:
  using Error::Error;
};

struct EventScalar {
  std::string tag;
  float value = 0;
};
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;          // set only on the version event
  std::vector<EventScalar> scalars;  // simple_value entries of its summary (other value kinds are skipped)
  size_t file_offset = 0;            // where its record starts
};
struct EventFileContents {
  std::vector<Event> events;
  bool truncated_tail = false;  // the last record was cut short (a run killed mid-write)
};

// Re-parses every record, verifies both CRCs and decodes the events. A truncated last record is an
// error unless `allow_truncated_tail`; CRC mismatches and malformed messages always are.
EventFileContents parse_event_file(std::string_view bytes, const std::string& source, bool allow_truncated_tail = false);
EventFileContents read_event_file(const std::string& path, bool allow_truncated_tail = false);

struct EventWriterOptions {
  // Buffered records are flushed once this many seconds (by `clock`) have passed since the last flush;
  // 0 flushes after every write. The version record is always flushed at once.
  double flush_interval_s = 2.0;
  std::function<double()> clock{};  // wall time in seconds; defaults to the system clock
  std::string host{};               // defaults to gethostname()
};

// Writes scalar events into a new file in `directory` (created if missing).
class EventWriter {
 public:
  explicit EventWriter(const std::string& directory, EventWriterOptions options = {});
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  const std::string& path() const { return path_; }
  void add_scalar(const std::string& tag, int64_t step, double value);
  // One event holding all values (one summary with several tags).
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  void flush();
  void close();

 private:
  void write_record(const std::string& payload);
  double now() const;

  EventWriterOptions options_;
  std::string path_;
  std::FILE* file_ = nullptr;
  double last_flush_ = 0;
};

}  // namespace moelab::io
