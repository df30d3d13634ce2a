#include "text/data/cache_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/util/check.h"

namespace moelab::text {
namespace fs = std::filesystem;

std::string default_text_cache_root() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "moelab/text").string();
  const char* home = std::getenv("HOME");
  MOELAB_CHECK(home && *home, "neither XDG_CACHE_HOME nor HOME is set: give the text cache directory explicitly");
  return (fs::path(home) / ".cache/moelab/text").string();
}

bool publish_directory(const std::string& final_dir, const std::function<void(const std::string&)>& fill) {
  const fs::path target(final_dir);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  MOELAB_CHECK(!ec, "cannot create cache directory " << target.parent_path().string() << ": " << ec.message());
  const fs::path staging =
      target.parent_path() / ("." + target.filename().string() + ".staging." + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  MOELAB_CHECK(!ec, "cannot create " << staging.string() << ": " << ec.message());
  try {
    fill(staging.string());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  if (std::rename(staging.c_str(), target.c_str()) != 0) {
    const int err = errno;
    fs::remove_all(staging, ec);
    if ((err == ENOTEMPTY || err == EEXIST) && fs::is_directory(target)) return false;
    MOELAB_FAIL("cannot rename " << staging.string() << " to " << final_dir << ": " << std::strerror(err));
  }
  return true;
}

}  // namespace moelab::text
