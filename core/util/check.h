#pragma once
// Checks that throw moelab::Error with file:line and a hint, e.g.
//   MOELAB_CHECK(a.dim() == 2, "matmul expects 2-D inputs, got " << a.shape_str());
#include <sstream>
#include <stdexcept>
#include <string>

namespace moelab {

// All moelab errors. what() = "file:line: message" for checks; message() is the text without the place,
// for callers that name a better place themselves (a config key's file:line:col).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what_arg) : std::runtime_error(what_arg), message_(what_arg) {}
  explicit Error(const char* what_arg) : Error(std::string(what_arg)) {}
  Error(const std::string& where, const std::string& message)
      : std::runtime_error(where + ": " + message), message_(message) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace moelab

#define MOELAB_CHECK(cond, msg)                                  \
  do {                                                           \
    if (!(cond)) [[unlikely]] {                                  \
      std::ostringstream moelab_check_os_;                       \
      moelab_check_os_ << msg;                                   \
      ::moelab::throw_error(__FILE__, __LINE__, moelab_check_os_.str()); \
    }                                                            \
  } while (0)

#define MOELAB_FAIL(msg) MOELAB_CHECK(false, msg)
