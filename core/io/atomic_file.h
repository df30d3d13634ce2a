#pragma once
// Crash-safe file writing: data goes to "<path>.tmp.<pid>", is fsync'ed, then renamed over <path>
// (and the directory fsync'ed), so readers see either the old file or the complete new one.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace moelab::io {

// An open temporary file; write() appends bytes and throws moelab::Error naming the path on failure.
class AtomicFileSink {
 public:
  virtual ~AtomicFileSink() = default;
  virtual void write(const void* data, size_t nbytes) = 0;
  void write(std::string_view text) { write(text.data(), text.size()); }
};

// Calls fill(sink) to produce the contents, then commits them to `path` atomically. If fill throws,
// the temporary file is removed and `path` is left untouched.
void write_file_atomic(const std::string& path, const std::function<void(AtomicFileSink&)>& fill);
void write_file_atomic(const std::string& path, std::string_view contents);

// Test hook: a simulated full disk. Writes to a file whose path contains `path_contains` (every file
// when empty) fail once `after_bytes` bytes went into it: the bytes up to there are written, then
// write() throws as for ENOSPC. Without a hook set here, the environment variables
// MOELAB_TEST_FAIL_WRITE_AFTER_BYTES=<n> and MOELAB_TEST_FAIL_WRITE_PATH=<substring> set one, so that
// tests can inject the fault into the `moelab` program.
struct WriteFault {
  uint64_t after_bytes = 0;
  std::string path_contains;
};
void set_write_fault_for_testing(std::optional<WriteFault> fault);

// Whole-file read; throws moelab::Error naming the path when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);

}  // namespace moelab::io
