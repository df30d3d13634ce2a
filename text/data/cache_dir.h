#pragma once
// Cache directories that appear whole or not at all: files are written (core/io/atomic_file.h) into a
// staging directory next to the final one, which is renamed into place only when everything succeeded.
#include <functional>
#include <string>

namespace moelab::text {

// $XDG_CACHE_HOME/moelab/text, else $HOME/.cache/moelab/text.
std::string default_text_cache_root();

// Creates `final_dir` by calling fill(staging_dir) and renaming the staging directory to final_dir. If fill
// throws, the staging directory is removed and the exception propagates, so no partial cache is left. When
// another process published final_dir first, ours is discarded and false is returned.
bool publish_directory(const std::string& final_dir, const std::function<void(const std::string& staging_dir)>& fill);

}  // namespace moelab::text
