#include "core/util/check.h"

#include <cstring>

namespace moelab {

void throw_error(const char* file, int line, const std::string& message) {
  // Report paths relative to the source tree: ".../core/ops/matmul.cpp" -> "core/ops/matmul.cpp".
  const char* rel = file;
  for (const char* top : {"/core/", "/vision/", "/text/", "/rl/", "/experiments/", "/bench/", "/tests/"}) {
    if (const char* p = std::strstr(file, top)) {
      rel = p + 1;
      break;
    }
  }
  throw Error(std::string(rel) + ":" + std::to_string(line), message);
}

}  // namespace moelab
