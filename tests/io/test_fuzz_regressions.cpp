// Inputs the fuzz targets (tests/fuzz) found crashing or hanging, kept as regression tests of the normal
// suite: each file of tests/fuzz/regressions/<target>/ must now give the reader's own clean error.
// The first byte of a fuzz_idx input picks the rank (1 + byte % 3), as in the fuzz target.
// The SentencePiece loader (tests/fuzz/sentencepiece_model.h) is compiled into this test as well.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/util/check.h"
#include "fuzz/sentencepiece_model.h"
#include "vision/data/idx.h"

using namespace moelab;
namespace fs = std::filesystem;

namespace {

const fs::path kRegressions = fs::path(MOELAB_SOURCE_DIR) / "tests" / "fuzz" / "regressions";

std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kRegressions / target)) out.push_back(e.path());
  return out;
}

std::string u64_le(uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }

}  // namespace

TEST(FuzzRegressions, SafetensorsInputsGiveSafetensorsErrors) {
  const auto files = inputs_of("fuzz_safetensors");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    const std::string bytes = io::read_file_bytes(f.string());
    EXPECT_THROW(io::parse_safetensors(bytes, f.filename().string()), io::SafetensorsError) << f;
  }
}

// nlohmann::json ends its input at a NUL byte; the bytes after one must not reach the key scanner.
TEST(FuzzRegressions, SafetensorsHeaderWithANulByteIsRejectedAtItsOffset) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const size_t nul_at = header.size();
  header += std::string(1, '\0') + "\"x";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string file = u64_le(header.size()) + header + std::string(4, '\0');
  try {
    io::parse_safetensors(file, "nul.safetensors");
    FAIL() << "accepted";
  } catch (const io::SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("nul.safetensors: at byte " + std::to_string(8 + nul_at) + ": the header holds a NUL byte"),
              std::string::npos)
        << e.what();
  }
}

// nlohmann::json throws out_of_range, not parse_error, for a number beyond double range.
TEST(FuzzRegressions, SafetensorsHeaderWithAnOverflowingNumberIsASafetensorsError) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":1e400})";
  header.append((8 - header.size() % 8) % 8, ' ');
  try {
    io::parse_safetensors(u64_le(header.size()) + header + std::string(4, '\0'), "big.safetensors");
    FAIL() << "accepted";
  } catch (const io::SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("big.safetensors: at byte 8: the header cannot be read as JSON: number overflow"),
              std::string::npos)
        << e.what();
  }
}

// A 24-byte file whose header declares 795 MB, and one declaring 4 GiB: the reader reports the
// truncated payload without allocating what the header claims. Checked in a child process limited to
// 256 MiB of address space beyond its current use, where an up-front allocation fails with bad_alloc.
TEST(FuzzRegressions, IdxHeadersDeclaringHugePayloadsDoNotAllocateThem) {
  std::vector<std::pair<fs::path, int>> cases;
  for (const auto& f : inputs_of("fuzz_idx")) {
    const std::string bytes = io::read_file_bytes(f.string());
    ASSERT_FALSE(bytes.empty());
    const fs::path plain = fs::temp_directory_path() / ("moelab_idx_regression_" + std::to_string(::getpid()) + "_" + f.filename().string());
    io::write_file_atomic(plain.string(), std::string_view(bytes).substr(1));
    cases.push_back({plain, 1 + static_cast<unsigned char>(bytes[0]) % 3});
  }
  const fs::path four_gib = fs::temp_directory_path() / ("moelab_idx_regression_4g_" + std::to_string(::getpid()));
  io::write_file_atomic(four_gib.string(), std::string("\0\0\x08\x03\0\x01\0\0\0\x01\0\0\0\0\0\x01", 16) + "abc");
  cases.push_back({four_gib, 3});
  for (const auto& [path, rank] : cases) {
    pid_t pid = ::fork();
    if (pid == 0) {
      struct rlimit lim {};
      ::getrlimit(RLIMIT_AS, &lim);
      std::ifstream statm("/proc/self/statm");
      size_t pages = 0;
      statm >> pages;
      lim.rlim_cur = pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE)) + (size_t{256} << 20);
      ::setrlimit(RLIMIT_AS, &lim);
      try {
        vision::read_idx_u8(path.string(), rank);
      } catch (const Error& e) {
        ::_exit(std::string(e.what()).find("truncated payload") != std::string::npos ? 0 : 3);
      } catch (const std::bad_alloc&) {
        ::_exit(4);
      }
      ::_exit(5);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status)) << path;
    EXPECT_EQ(WEXITSTATUS(status), 0) << path << ": 3 = other error, 4 = allocated the declared size, 5 = accepted";
    fs::remove(path);
  }
}

// The sentencepiece library throws its own exception type for a piece holding a NUL byte (an empty
// C string to its trie builder); the loader turns it into moelab::Error naming the source.
TEST(FuzzRegressions, SentencePieceModelsTheLibraryThrowsOnAreErrorsNamingTheSource) {
  const auto files = inputs_of("fuzz_sentencepiece");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    const std::string bytes = io::read_file_bytes(f.string());
    try {
      fuzz::load_sentencepiece_model(bytes, f.filename().string());
      ADD_FAILURE() << f << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(f.filename().string() + ": not a usable SentencePiece model"), std::string::npos)
          << e.what();
    }
  }
}
