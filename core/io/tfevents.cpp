#include "core/io/tfevents.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/io/atomic_file.h"

namespace moelab::io {
namespace {

// ---- protobuf wire format: the few pieces an Event needs ----

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
template <typename T> void put_fixed(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}
void put_bytes_field(std::string& out, uint8_t key, std::string_view bytes) {
  out += static_cast<char>(key);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Reads protobuf fields from a byte range; throws a plain message that the caller places in context.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : p_(bytes) {}
  bool done() const { return pos_ >= p_.size(); }
  // Returns (field number, wire type).
  std::pair<uint32_t, uint32_t> key() {
    uint64_t k = varint();
    return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      uint8_t b = static_cast<uint8_t>(p_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("varint longer than 10 bytes");
  }
  template <typename T> T fixed() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    need(n);
    std::string_view out = p_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: fixed<uint64_t>(); break;
      case 2: bytes(); break;
      case 5: fixed<uint32_t>(); break;
      default: throw std::runtime_error("unsupported wire type " + std::to_string(wire_type));
    }
  }
  void expect(uint32_t got, uint32_t want, const char* field) const {
    if (got != want)
      throw std::runtime_error(std::string("field ") + field + " has wire type " + std::to_string(got) +
                               ", expected " + std::to_string(want));
  }

 private:
  void need(uint64_t n) const {
    if (n > p_.size() - pos_) throw std::runtime_error("message ends in the middle of a field");
  }
  std::string_view p_;
  size_t pos_ = 0;
};

EventScalar decode_value(std::string_view bytes) {
  EventScalar s;
  WireReader r(bytes);
  while (!r.done()) {
    auto [field, wt] = r.key();
    if (field == 1) {
      r.expect(wt, 2, "Value.tag");
      s.tag = std::string(r.bytes());
    } else if (field == 2) {
      r.expect(wt, 5, "Value.simple_value");
      s.value = r.fixed<float>();
    } else {
      r.skip(wt);
    }
  }
  return s;
}

Event decode_event(std::string_view bytes) {
  Event e;
  WireReader r(bytes);
  while (!r.done()) {
    auto [field, wt] = r.key();
    if (field == 1) {
      r.expect(wt, 1, "Event.wall_time");
      e.wall_time = r.fixed<double>();
    } else if (field == 2) {
      r.expect(wt, 0, "Event.step");
      e.step = static_cast<int64_t>(r.varint());
    } else if (field == 3) {
      r.expect(wt, 2, "Event.file_version");
      e.file_version = std::string(r.bytes());
    } else if (field == 5) {
      r.expect(wt, 2, "Event.summary");
      WireReader summary(r.bytes());
      while (!summary.done()) {
        auto [sf, swt] = summary.key();
        if (sf == 1) {
          summary.expect(swt, 2, "Summary.value");
          e.scalars.push_back(decode_value(summary.bytes()));
        } else {
          summary.skip(swt);
        }
      }
    } else {
      r.skip(wt);
    }
  }
  return e;
}

std::string local_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

double system_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
uint32_t unmask_crc32c(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

std::string frame_record(std::string_view payload) {
  std::string out;
  const uint64_t n = payload.size();
  put_fixed<uint64_t>(out, n);
  put_fixed<uint32_t>(out, mask_crc32c(crc32c(out.data(), 8)));
  out.append(payload);
  put_fixed<uint32_t>(out, mask_crc32c(crc32c(payload)));
  return out;
}

std::string encode_file_version_event(double wall_time, std::string_view version) {
  std::string out;
  out += '\x09';
  put_fixed<double>(out, wall_time);
  put_bytes_field(out, 0x1A, version);
  return out;
}

std::string encode_scalar_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes_field(v, 0x0A, tag);
    v += '\x15';
    put_fixed<float>(v, value);
    put_bytes_field(summary, 0x0A, v);
  }
  std::string out;
  out += '\x09';
  put_fixed<double>(out, wall_time);
  out += '\x10';
  put_varint(out, static_cast<uint64_t>(step));  // negative steps take 10 bytes, as protobuf does
  put_bytes_field(out, 0x2A, summary);
  return out;
}

std::string event_file_name(double wall_time, const std::string& host, long pid) {
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%010lld", static_cast<long long>(std::floor(wall_time)));
  return std::string("events.out.tfevents.") + secs + "." + host + "." + std::to_string(pid);
}

// ---- reading ----

EventFileContents parse_event_file(std::string_view bytes, const std::string& source, bool allow_truncated_tail) {
  EventFileContents out;
  size_t pos = 0;
  for (size_t index = 0; pos < bytes.size(); ++index) {
    const std::string where = source + ": record " + std::to_string(index) + " at byte " + std::to_string(pos) + ": ";
    const size_t left = bytes.size() - pos;
    auto truncated = [&](const std::string& what) {
      if (allow_truncated_tail) {
        out.truncated_tail = true;
        return;
      }
      throw EventFileError(where + what + " (the file is truncated; was the writer killed?)");
    };
    if (left < 12) {
      truncated("only " + std::to_string(left) + " bytes left, a record header needs 12");
      break;
    }
    uint64_t length;
    uint32_t length_crc;
    std::memcpy(&length, bytes.data() + pos, 8);
    std::memcpy(&length_crc, bytes.data() + pos + 8, 4);
    const uint32_t want_length_crc = mask_crc32c(crc32c(bytes.data() + pos, 8));
    if (length_crc != want_length_crc)
      throw EventFileError(where + "length CRC mismatch (stored " + hex32(length_crc) + ", computed " +
                           hex32(want_length_crc) + "): the file is corrupt");
    if (length > left - 12 || left - 12 - length < 4) {
      truncated("payload of " + std::to_string(length) + " bytes plus its CRC needs " + std::to_string(length + 4) +
                " bytes, " + std::to_string(left - 12) + " left");
      break;
    }
    std::string_view payload = bytes.substr(pos + 12, length);
    uint32_t data_crc;
    std::memcpy(&data_crc, bytes.data() + pos + 12 + length, 4);
    const uint32_t want_data_crc = mask_crc32c(crc32c(payload));
    if (data_crc != want_data_crc)
      throw EventFileError(where + "payload CRC mismatch (stored " + hex32(data_crc) + ", computed " +
                           hex32(want_data_crc) + "): the file is corrupt");
    try {
      out.events.push_back(decode_event(payload));
    } catch (const std::runtime_error& e) {
      throw EventFileError(where + "malformed Event message: " + e.what());
    }
    out.events.back().file_offset = pos;
    pos += 12 + length + 4;
  }
  return out;
}

EventFileContents read_event_file(const std::string& path, bool allow_truncated_tail) {
  std::string bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const Error& e) {
    throw EventFileError(e.what());
  }
  return parse_event_file(bytes, path, allow_truncated_tail);
}

// ---- writing ----

EventWriter::EventWriter(const std::string& directory, EventWriterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = system_seconds;
  if (options_.host.empty()) options_.host = local_hostname();
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  MOELAB_CHECK(!ec, "cannot create directory " << directory << ": " << ec.message());
  const double t = now();
  const std::string base = directory + "/" + event_file_name(t, options_.host, ::getpid());
  // "x": never append to another writer's file; a second writer in the same second gets a suffix.
  for (int attempt = 0; !file_ && attempt < 1000; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    file_ = std::fopen(path_.c_str(), "wbx");
    MOELAB_CHECK(file_ || errno == EEXIST, "cannot create event file " << path_ << ": " << std::strerror(errno));
  }
  MOELAB_CHECK(file_, "cannot create a new event file next to " << base);
  write_record(encode_file_version_event(t));
  flush();
}

EventWriter::~EventWriter() {
  try {
    close();
  } catch (...) {
  }
}

double EventWriter::now() const { return options_.clock(); }

void EventWriter::write_record(const std::string& payload) {
  MOELAB_CHECK(file_, "event file " << path_ << " is closed");
  const std::string record = frame_record(payload);
  MOELAB_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size(),
               "cannot write " << path_ << ": " << std::strerror(errno));
}

void EventWriter::add_scalar(const std::string& tag, int64_t step, double value) { add_scalars(step, {{tag, value}}); }

void EventWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  std::vector<std::pair<std::string, float>> as_float;
  as_float.reserve(values.size());
  for (const auto& [tag, v] : values) as_float.emplace_back(tag, static_cast<float>(v));
  const double t = now();
  write_record(encode_scalar_event(t, step, as_float));
  if (t - last_flush_ >= options_.flush_interval_s) flush();
}

void EventWriter::flush() {
  if (!file_) return;
  MOELAB_CHECK(std::fflush(file_) == 0, "cannot flush " << path_ << ": " << std::strerror(errno));
  last_flush_ = now();
}

void EventWriter::close() {
  if (!file_) return;
  std::FILE* f = file_;
  file_ = nullptr;
  MOELAB_CHECK(std::fclose(f) == 0, "cannot close " << path_ << ": " << std::strerror(errno));
}

}  // namespace moelab::io
