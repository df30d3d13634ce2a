#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/util/check.h"

namespace moelab::io {
namespace {

std::string errno_text() { return std::strerror(errno); }

std::mutex g_fault_mutex;
std::optional<WriteFault> g_fault;  // set by tests in-process; otherwise the environment decides

// The fault that applies to `path`, if any.
std::optional<WriteFault> fault_for(const std::string& path) {
  std::optional<WriteFault> f;
  {
    std::lock_guard<std::mutex> lock(g_fault_mutex);
    f = g_fault;
  }
  if (!f) {
    const char* after = std::getenv("MOELAB_TEST_FAIL_WRITE_AFTER_BYTES");
    if (!after || !*after) return std::nullopt;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(after, &end, 10);
    MOELAB_CHECK(end && *end == '\0', "MOELAB_TEST_FAIL_WRITE_AFTER_BYTES must be a byte count, got '" << after << "'");
    const char* contains = std::getenv("MOELAB_TEST_FAIL_WRITE_PATH");
    f = WriteFault{n, contains ? contains : ""};
  }
  if (!f->path_contains.empty() && path.find(f->path_contains) == std::string::npos) return std::nullopt;
  return f;
}

class FdSink : public AtomicFileSink {
 public:
  FdSink(int fd, std::string path, std::optional<WriteFault> fault)
      : fd_(fd), path_(std::move(path)), fault_(std::move(fault)) {}
  using AtomicFileSink::write;
  void write(const void* data, size_t nbytes) override {
    const char* p = static_cast<const char*>(data);
    bool fail_after = false;
    if (fault_ && written_ + nbytes > fault_->after_bytes) {
      nbytes = fault_->after_bytes > written_ ? fault_->after_bytes - written_ : 0;
      fail_after = true;
    }
    write_all(p, nbytes);
    MOELAB_CHECK(!fail_after, "cannot write " << path_ << ": " << std::strerror(ENOSPC) << " (after " << written_
                                              << " bytes; simulated by a test fault)");
  }

 private:
  void write_all(const char* p, size_t nbytes) {
    written_ += nbytes;
    while (nbytes > 0) {
      ssize_t n = ::write(fd_, p, nbytes);
      if (n < 0 && errno == EINTR) continue;
      MOELAB_CHECK(n > 0, "cannot write " << path_ << ": " << errno_text());
      p += n;
      nbytes -= static_cast<size_t>(n);
    }
  }

  int fd_;
  std::string path_;
  std::optional<WriteFault> fault_;
  uint64_t written_ = 0;
};

std::string parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(AtomicFileSink&)>& fill) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MOELAB_CHECK(fd >= 0, "cannot create " << tmp << ": " << errno_text());
  try {
    FdSink sink(fd, tmp, fault_for(path));
    fill(sink);
    MOELAB_CHECK(::fsync(fd) == 0, "cannot fsync " << tmp << ": " << errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    MOELAB_FAIL("cannot close " << tmp << ": " << why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    MOELAB_FAIL("cannot rename " << tmp << " to " << path << ": " << why);
  }
  // Persist the rename itself; failure here only weakens durability, so it is not an error.
  int dir_fd = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  write_file_atomic(path, [&](AtomicFileSink& sink) { sink.write(contents); });
}

void set_write_fault_for_testing(std::optional<WriteFault> fault) {
  std::lock_guard<std::mutex> lock(g_fault_mutex);
  g_fault = std::move(fault);
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOELAB_CHECK(in, "cannot open " << path << ": " << errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  MOELAB_CHECK(!in.bad(), "cannot read " << path);
  return std::move(ss).str();
}

}  // namespace moelab::io
