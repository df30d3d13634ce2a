#pragma once
// Checks that throw moelab::Error with file:line and a hint, e.g.
//   MOELAB_CHECK(a.dim() == 2, "matmul expects 2-D inputs, got " << a.shape_str());
#include <sstream>
#include <stdexcept>
#include <string>

namespace moelab {

// All moelab errors. what() = "file:line: message".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
