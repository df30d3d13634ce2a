// The confusion matrix: counts, accuracy, per-class accuracy and its CSV/HTML forms.
#include <gtest/gtest.h>

#include "core/util/check.h"
#include "vision/analysis/confusion.h"

using namespace moelab;
using namespace moelab::vision;

TEST(Confusion, CountsAndAccuracies) {
  ConfusionMatrix m(3);
  EXPECT_EQ(m.accuracy(), 0.0);
  m.add({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2});
  EXPECT_EQ(m.total(), 6);
  EXPECT_EQ(m.count(0, 1), 1);
  EXPECT_EQ(m.count(1, 2), 1);
  EXPECT_DOUBLE_EQ(m.accuracy(), 4.0 / 6.0);
  std::vector<double> pc = m.per_class_accuracy();
  EXPECT_DOUBLE_EQ(pc[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(pc[1], 0.5);
  EXPECT_DOUBLE_EQ(pc[2], 1.0);
  EXPECT_THROW(m.add(3, 0), Error);
  EXPECT_THROW(m.add({0}, {0, 1}), Error);
  EXPECT_EQ(m.to_csv({"a", "b", "c"}), "truth\\predicted,\"a\",\"b\",\"c\"\n\"a\",2,1,0\n\"b\",0,1,1\n\"c\",0,0,1\n");
  std::string html = m.to_html({"a<b", "b", "c"});
  EXPECT_NE(html.find("a&lt;b"), std::string::npos);
  EXPECT_NE(html.find("66.7%"), std::string::npos);
}
