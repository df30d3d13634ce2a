// numpy legacy RandomState reproduced: check values from numpy 1.24 (RandomState(seed)).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "rl/envs/numpy_random.h"

using moelab::rl::NumpyRandom;

TEST(NumpyRandom, RandSeed42MatchesNumpy) {
  NumpyRandom rng(42);
  EXPECT_EQ(rng.rand(), 0.37454011884736249);
  EXPECT_EQ(rng.rand(), 0.95071430640991617);
  EXPECT_EQ(rng.rand(), 0.73199394181140509);
}

TEST(NumpyRandom, RandOtherSeeds) {
  NumpyRandom zero(0);
  EXPECT_EQ(zero.rand(), 0.5488135039273248);
  EXPECT_EQ(zero.rand(), 0.7151893663724195);
  EXPECT_EQ(zero.rand(), 0.6027633760716439);
  NumpyRandom largest(4294967295u);
  EXPECT_EQ(largest.rand(), 0.0976320289940138);
  EXPECT_EQ(largest.rand(), 0.9123828453026218);
  EXPECT_EQ(largest.randint(1000003), 931764);
}

TEST(NumpyRandom, RandintStreamsSeed42) {
  NumpyRandom a(42);
  std::vector<int64_t> got;
  for (int i = 0; i < 12; ++i) got.push_back(a.randint(3));
  EXPECT_EQ(got, (std::vector<int64_t>{2, 0, 2, 2, 0, 0, 2, 1, 2, 2, 2, 2}));

  NumpyRandom b(42);
  got.clear();
  for (int i = 0; i < 12; ++i) got.push_back(b.randint(1, 9));
  EXPECT_EQ(got, (std::vector<int64_t>{7, 4, 5, 7, 3, 8, 5, 5, 7, 2, 3, 7}));

  // randint(1, 6, size=8) twice: element by element, in order.
  NumpyRandom c(42);
  got.clear();
  for (int i = 0; i < 16; ++i) got.push_back(c.randint(1, 6));
  EXPECT_EQ(got, (std::vector<int64_t>{4, 5, 3, 5, 5, 2, 3, 3, 3, 5, 4, 3, 5, 2, 4, 2}));
}

TEST(NumpyRandom, InterleavedDrawsShareOneStream) {
  // rand(), randint(2), rand(), randint(1,9), randint(7), randint(5,6), rand() on one RandomState(42).
  NumpyRandom rng(42);
  EXPECT_EQ(rng.rand(), 0.3745401188473625);
  EXPECT_EQ(rng.randint(2), 0);
  EXPECT_EQ(rng.rand(), 0.1834347898661638);
  EXPECT_EQ(rng.randint(1, 9), 8);
  EXPECT_EQ(rng.randint(7), 4);
  EXPECT_EQ(rng.randint(5, 6), 5);  // a range of one value draws nothing
  EXPECT_EQ(rng.rand(), 0.596850157946487);
}

TEST(NumpyRandom, SingleValueRangeDrawsNothing) {
  NumpyRandom a(9), b(9);
  EXPECT_EQ(a.randint(3, 4), 3);
  EXPECT_EQ(a.next_uint32(), b.next_uint32());
}

TEST(NumpyRandom, WideRangesUseTwoWords) {
  NumpyRandom rng(42);
  EXPECT_EQ(rng.randint(0, int64_t{1} << 40), 441507790259);
  EXPECT_EQ(rng.randint(0, int64_t{1} << 40), 395924837646);
}

TEST(NumpyRandom, ReseedRestartsTheStream) {
  NumpyRandom rng(42);
  rng.rand();
  rng.randint(5);
  rng.seed(42);
  EXPECT_EQ(rng.rand(), 0.37454011884736249);
}

TEST(Mt19937, EqualsStdMt19937) {
  for (uint32_t seed : {0u, 1u, 42u, 5489u, 4294967295u}) {
    moelab::rl::Mt19937 ours(seed);
    std::mt19937 reference(seed);
    for (int i = 0; i < 3000; ++i) ASSERT_EQ(ours(), static_cast<uint32_t>(reference())) << "seed " << seed << " draw " << i;
  }
  // The 10000th output of the default-seeded generator, as the C++ standard requires.
  moelab::rl::Mt19937 standard;
  uint32_t value = 0;
  for (int i = 0; i < 10000; ++i) value = standard();
  EXPECT_EQ(value, 4123659995u);
}
