// Progress output: tqdm and plain formatting with injected times; the Progress class driven by a fake
// clock into a temporary file (nothing depends on wall-clock speed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "core/util/check.h"
#include "core/util/progress.h"

using namespace moelab;

namespace {

std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  return out;
}

struct Fixture {
  double t = 100.0;
  std::FILE* file = std::tmpfile();
  ~Fixture() { std::fclose(file); }
  ProgressOptions options(ProgressMode mode) {
    ProgressOptions o;
    o.mode = mode;
    o.stream = file;
    o.width = 66;
    o.plain_every_s = 10;
    o.clock = [this] { return t; };
    return o;
  }
};

}  // namespace

TEST(ProgressFormat, Intervals) {
  EXPECT_EQ(format_interval(0), "00:00");
  EXPECT_EQ(format_interval(12.9), "00:12");
  EXPECT_EQ(format_interval(3599), "59:59");
  EXPECT_EQ(format_interval(3723), "1:02:03");
  EXPECT_EQ(format_interval(-1), "?");
}

TEST(ProgressFormat, RatesAndMetrics) {
  EXPECT_EQ(format_rate(36.2), "36.2it/s");
  EXPECT_EQ(format_rate(4), "4.00it/s");
  EXPECT_EQ(format_rate(125.4), "125it/s");
  EXPECT_EQ(format_rate(0.4), "2.50s/it");
  EXPECT_EQ(format_rate(0), "?it/s");
  EXPECT_EQ(format_metric(2.3141), "2.31");
  EXPECT_EQ(format_metric(0.0123456), "0.0123");
  EXPECT_EQ(format_metric(3e-4), "3e-4");
  EXPECT_EQ(format_metric(-2.5e-7), "-2.5e-7");
  EXPECT_EQ(format_metric(123456), "1.23e5");
  EXPECT_EQ(format_metric(1234.4), "1234");
  EXPECT_EQ(format_metric(0), "0");
  EXPECT_EQ(format_metric(std::nan("")), "nan");
}

TEST(ProgressFormat, TqdmLine) {
  ProgressSnapshot s{"desc", 450, 1000, 12.4, 36.2, {{"loss", 2.31}}};
  EXPECT_EQ(format_bar_line(s, 66), "desc:  45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s, loss=2.31]");
  s.n = 1000;  // one more digit: the bar gives up a column
  EXPECT_EQ(format_bar_line(s, 66), "desc: 100%|█████████| 1000/1000 [00:12<00:00, 36.2it/s, loss=2.31]");
  s.n = 0;
  s.rate = 0;
  s.postfix.clear();
  s.desc = "";
  EXPECT_EQ(format_bar_line(s, 40), "  0%|          | 0/1000 [00:12<?, ?it/s]");
  ProgressSnapshot unknown{"eval", 37, 0, 65, 0.5, {}};
  EXPECT_EQ(format_bar_line(unknown, 80), "eval: 37it [01:05, 2.00s/it]");
}

TEST(ProgressFormat, PlainLine) {
  ProgressSnapshot s{"", 450, 1000, 36.6, 12.3, {{"loss", 2.31}, {"lr", 3e-4}}};
  EXPECT_EQ(format_plain_line(s), "step 450/1000 loss 2.31 lr 3e-4 12.3 it/s eta 00:44");
  s.desc = "train";
  EXPECT_EQ(format_plain_line(s, /*final=*/true), "train step 450/1000 loss 2.31 lr 3e-4 12.3 it/s in 00:36");
}

TEST(ProgressFormat, ParseMode) {
  EXPECT_EQ(parse_progress_mode("plain"), ProgressMode::Plain);
  EXPECT_EQ(progress_mode_name(parse_progress_mode("bar")), "bar");
  EXPECT_THROW(parse_progress_mode("fancy"), Error);
}

TEST(Progress, BarRedrawsAtMostEveryTenthOfASecondAndLogsAbove) {
  Fixture f;
  {
    Progress p("train", 100, f.options(ProgressMode::Bar));
    EXPECT_EQ(p.mode(), ProgressMode::Bar);
    f.t += 1;
    p.update(10, {{"loss", 2.0}});  // drawn
    f.t += 0.0625;
    p.update(11, {{"loss", 1.9}});  // within 0.1 s: skipped
    f.t += 0.0625;
    p.update(12, {{"loss", 1.8}});  // 0.125 s after the last draw: drawn
    p.log("eval acc 0.5");
    f.t += 0.01;
    p.finish();
  }
  const std::string out = contents(f.file);
  EXPECT_EQ(out.find('\n'), out.find("eval acc 0.5\n") + 12);  // the only line ended early is the log line
  EXPECT_EQ(out.find("loss=1.9"), std::string::npos);
  EXPECT_NE(out.find("\rtrain:  10%|"), std::string::npos);
  EXPECT_NE(out.find("12/100 [00:01<00:08, 10.7it/s, loss=1.8]"), std::string::npos) << out;
  // The log line first blanks the bar, then the bar is redrawn below it; finish ends the line.
  EXPECT_NE(out.find("\r" + std::string(66, ' ') + "\reval acc 0.5\n\rtrain:  12%|"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find("\x1b"), std::string::npos);
}

TEST(Progress, PlainPrintsPeriodicLinesWithoutCarriageReturns) {
  Fixture f;
  {
    Progress p("", 1000, f.options(ProgressMode::Plain));
    for (int i = 1; i <= 1000; ++i) {
      f.t += 0.0625;  // 16 it/s (exact in binary): one line every 160 steps
      p.update(i, {{"loss", 1.0}});
    }
    p.log("checkpoint saved");
  }
  const std::string out = contents(f.file);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out,
            "step 160/1000 loss 1 16.0 it/s eta 00:52\n"
            "step 320/1000 loss 1 16.0 it/s eta 00:42\n"
            "step 480/1000 loss 1 16.0 it/s eta 00:32\n"
            "step 640/1000 loss 1 16.0 it/s eta 00:22\n"
            "step 800/1000 loss 1 16.0 it/s eta 00:12\n"
            "step 960/1000 loss 1 16.0 it/s eta 00:02\n"
            "checkpoint saved\n"
            "step 1000/1000 loss 1 16.0 it/s in 01:02\n");
}

TEST(Progress, NoneModePrintsOnlyLogLinesAndResumeCountsRateFromInitial) {
  Fixture f;
  ProgressOptions o = f.options(ProgressMode::None);
  o.initial = 500;
  Progress p("train", 1000, o);
  f.t += 10;
  p.update(600);
  EXPECT_DOUBLE_EQ(p.snapshot().rate, 10.0);
  p.log("hello");
  p.finish();
  EXPECT_EQ(contents(f.file), "hello\n");
}

TEST(Progress, AutoIsPlainWhenNotATerminal) {
  Fixture f;
  Progress p("x", 10, f.options(ProgressMode::Auto));
  EXPECT_EQ(p.mode(), ProgressMode::Plain);
}
