// Task lm's data layout (experiments/lib/tasks/lm_support.h): documents laid end to end after </s>, packed
// into sequences whose targets are the next tokens, every token but the first a target exactly once, with
// each token's domain as its routing label.
#include <gtest/gtest.h>

#include "experiments/lib/tasks/lm_support.h"

using namespace moelab;
using namespace moelab::experiments;

namespace {

TEST(LmData, StreamPutsEachDocumentAfterAnEndToken) {
  std::vector<text::Document> docs = {{0, "a"}, {2, "b"}, {1, "c"}};
  std::vector<std::vector<int32_t>> ids = {{10, 11}, {20}, {30, 31, 32}};
  TokenStream s = make_token_stream(docs, ids, {2, 0, 1}, 2);
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{2, 30, 31, 32, 2, 10, 11, 2, 20, 2}));
  EXPECT_EQ(s.domains, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 0, 0, 2, 2}));
  TokenStream in_order = make_token_stream(docs, ids, {}, 2);
  EXPECT_EQ(in_order.tokens, (std::vector<int32_t>{2, 10, 11, 2, 20, 2, 30, 31, 32, 2}));
  EXPECT_THROW(make_token_stream(docs, ids, {5}, 2), Error);
}

TEST(LmData, SequencesCoverEveryTargetOnce) {
  TokenStream s;
  for (int i = 0; i < 23; ++i) {
    s.tokens.push_back(100 + i);
    s.domains.push_back(static_cast<uint8_t>(i / 10));
  }
  const int64_t L = 5;
  ASSERT_EQ(count_sequences(s.size(), L), 5);  // 22 targets: 4 full sequences and one of 2
  std::vector<int64_t> targets;
  nn::Batch full = sequence_batch(s, L, 0, 4);
  ASSERT_EQ(full.tokens.shape(), (Shape{4, 5}));
  const std::vector<int64_t> in = full.tokens.to_vector<int64_t>(), out = full.targets.to_vector<int64_t>(),
                             lab = full.labels.to_vector<int64_t>();
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i], in[i] + 1);                  // the next token
    EXPECT_EQ(lab[i], (in[i] - 100) / 10);         // the input token's domain
  }
  EXPECT_EQ(full.token_ids.to_vector<int64_t>(), in);  // hash routing by token id
  targets.insert(targets.end(), out.begin(), out.end());
  nn::Batch tail = sequence_batch(s, L, 4, 1);
  ASSERT_EQ(tail.tokens.shape(), (Shape{1, 2}));
  const std::vector<int64_t> t = tail.targets.to_vector<int64_t>();
  targets.insert(targets.end(), t.begin(), t.end());
  std::vector<int64_t> expected;
  for (int i = 1; i < 23; ++i) expected.push_back(100 + i);
  EXPECT_EQ(targets, expected);
  EXPECT_THROW(sequence_batch(s, L, 3, 2), Error);  // a short final sequence cannot share a batch
  EXPECT_THROW(sequence_batch(s, L, 5, 1), Error);
  EXPECT_EQ(count_sequences(1, L), 0);
  EXPECT_EQ(count_sequences(6, L), 1);
  EXPECT_EQ(count_sequences(7, L), 2);
}

}  // namespace
