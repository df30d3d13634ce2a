// `moelab data text`: builds the corpus and tokenizer into the given cache, prints the manifest table, finds
// both in the cache the second time, and turns a vocabulary the corpus cannot support into exit code 2.
#include <gtest/gtest.h>

#include "experiments/moelab_cli_util.h"

using namespace moelab::testing;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Removes the caches this program made when all tests are done.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(fresh_dir("text_cli", "cache").parent_path()); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

}  // namespace

TEST(DataTextCommand, BuildsThenFindsTheCacheAndPrintsTheTable) {
  const fs::path cache = fresh_dir("text_cli", "cache");
  const std::vector<std::string> args = {"data", "text", "--cache", cache.string(), "--max-domain-bytes", "8000",
                                         "--vocab", "700"};
  const CommandResult first = run_moelab(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(contains(first.output, "(built in ")) << first.output;
  EXPECT_TRUE(contains(first.output, "trained in ")) << first.output;
  for (const std::string domain : {"en", "de", "es", "it", "ru", "pl", "cs", "cpp", "python", "dict", "licence", "all"})
    for (const std::string split : {"train", "validation", "test"})
      EXPECT_TRUE(contains(first.output, "\n" + std::string(domain + "        ").substr(0, 9) + split))
          << domain << " " << split << "\n" << first.output;
  EXPECT_TRUE(contains(first.output, "round-trip exact")) << first.output;

  const CommandResult second = run_moelab(args);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_TRUE(contains(second.output, "(cached, loaded in ")) << second.output;
  EXPECT_TRUE(contains(second.output, "pieces; cached")) << second.output;
  // The same table both times (between the timing lines above it and the encoding time below it).
  auto table = [](const std::string& out) {
    const size_t begin = out.find("checksum:");
    return out.substr(begin, out.find("\nencoded and decoded") - begin);
  };
  EXPECT_EQ(table(first.output), table(second.output));
  EXPECT_GT(table(first.output).size(), 1000u);
}

TEST(DataTextCommand, VocabularyTooLargeIsAUsageError) {
  const fs::path cache = fresh_dir("text_cli", "too_large");
  const CommandResult r =
      run_moelab({"data", "text", "--cache", cache.string(), "--max-domain-bytes", "3000", "--vocab", "60000"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--vocab 60000")) << r.output;
  EXPECT_TRUE(contains(r.output, "Vocabulary size too high (60000)")) << r.output;
  // Only the corpus is cached; no tokenizer directory or staging directory is left.
  int tokenizer_dirs = 0;
  for (const auto& e : fs::directory_iterator(cache)) tokenizer_dirs += e.path().filename().string().find("tokenizer") != std::string::npos;
  EXPECT_EQ(tokenizer_dirs, 0);

  const CommandResult bad_model = run_moelab({"data", "text", "--cache", cache.string(), "--model", "wordpiece"});
  EXPECT_EQ(bad_model.exit_code, 2) << bad_model.output;
}
