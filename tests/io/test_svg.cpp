// Report primitives: SVG charts are well-formed XML with the expected elements; escaping; ticks; CSV.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "core/io/csv.h"
#include "core/io/svg.h"
#include "core/util/check.h"

using namespace moelab::io;

namespace {

// A small XML checker: balanced tags, quoted attributes, no stray '<' or bare '&'. Returns "" when
// well-formed, else what is wrong; counts start tags by name.
std::string check_xml(const std::string& s, std::map<std::string, int>* counts = nullptr) {
  std::vector<std::string> stack;
  auto entity_ok = [&](size_t i) {
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"})
      if (s.compare(i, std::strlen(e), e) == 0) return true;
    return false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&' && !entity_ok(i)) return "bare & at " + std::to_string(i);
    if (s[i] == '>') return "stray > at " + std::to_string(i);
    if (s[i] != '<') continue;
    size_t j = i + 1;
    bool in_quote = false;
    for (; j < s.size(); ++j) {
      if (s[j] == '"') in_quote = !in_quote;
      else if (!in_quote && s[j] == '>') break;
      else if (s[j] == '<') return "'<' inside a tag at " + std::to_string(j);
      else if (in_quote && s[j] == '&' && !entity_ok(j)) return "bare & in attribute at " + std::to_string(j);
    }
    if (j == s.size()) return "unterminated tag at " + std::to_string(i);
    std::string tag = s.substr(i + 1, j - i - 1);
    i = j;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    if (counts) ++(*counts)[name];
    if (!self_closing) stack.push_back(name);
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

size_t count_of(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(Svg, HtmlEscape) {
  EXPECT_EQ(html_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  EXPECT_EQ(check_xml("<a x=\"1\"><b/>t &amp; u</a>"), "");
  EXPECT_NE(check_xml("<a><b></a>"), "");  // the checker itself can fail
  EXPECT_NE(check_xml("<a>x & y</a>"), "");
}

TEST(Svg, NiceAndLogTicks) {
  EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0, 1000, 5), (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_EQ(nice_ticks(-3, 7, 5), (std::vector<double>{-2, 0, 2, 4, 6}));
  EXPECT_EQ(log_ticks(0.001, 10), (std::vector<double>{0.001, 0.01, 0.1, 1, 10}));
  EXPECT_EQ(log_ticks(1.5, 30), (std::vector<double>{2, 5, 10, 20}));
}

TEST(Svg, Colours) {
  EXPECT_EQ(palette_color(0), "#1f77b4");
  EXPECT_EQ(palette_color(11), "#ff7f0e");
  EXPECT_EQ(viridis(0), "#440154");
  EXPECT_EQ(viridis(1), "#fde725");
  EXPECT_EQ(viridis(-3), "#440154");
}

TEST(Svg, LineChartStructure) {
  std::vector<double> x = {0, 100, 200, 300, 400}, y = {4.0, 2.0, NAN, 1.0, 0.5};
  const std::string svg = svg_line_chart({{"train <loss>", x, y}, {"val", {0, 200, 400}, {3.5, 2.5, 1.5}, "", true}},
                                         {.title = "loss & accuracy", .x_label = "step", .y_label = "loss"});
  std::map<std::string, int> counts;
  ASSERT_EQ(check_xml(svg, &counts), "") << svg;
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"360\"", 0), 0u);
  EXPECT_EQ(count_of(svg, "<path class=\"series\""), 2u);
  EXPECT_EQ(count_of(svg, "<g class=\"legend\""), 2u);
  EXPECT_NE(svg.find("train &lt;loss&gt;"), std::string::npos);
  EXPECT_NE(svg.find("loss &amp; accuracy"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  // The NaN splits the first series into two sub-paths.
  const size_t first = svg.find("<path class=\"series\"");
  const std::string d = svg.substr(svg.find(" d=\"", first), svg.find("\"", svg.find(" d=\"", first) + 4) - svg.find(" d=\"", first));
  EXPECT_EQ(count_of(d, "M"), 2u) << d;
  EXPECT_EQ(counts["svg"], 1);
  EXPECT_GE(counts["line"], 2 + 5 + 4);  // axes plus x and y ticks
}

TEST(Svg, LogScaleSkipsNonPositiveValues) {
  const std::string svg = svg_line_chart({{"lr", {1, 2, 3, 4}, {1e-4, 0, 1e-3, 1e-2}}}, {.log_y = true});
  ASSERT_EQ(check_xml(svg), "");
  EXPECT_NE(svg.find(">0.0001<"), std::string::npos);
  EXPECT_NE(svg.find(">0.01<"), std::string::npos);
  EXPECT_EQ(count_of(svg, "<circle class=\"point\""), 1u);  // 1e-4 is cut off from the rest by the 0
}

TEST(Svg, EmptyAndMismatchedSeries) {
  EXPECT_EQ(check_xml(svg_line_chart({})), "");
  EXPECT_EQ(check_xml(svg_line_chart({{"none", {}, {}}})), "");
  EXPECT_THROW(svg_line_chart({{"bad", {1, 2}, {1}}}), moelab::Error);
}

TEST(Svg, HeatmapStructure) {
  std::vector<std::vector<double>> v = {{0.1, 0.5, 0.9}, {0.2, NAN, 0.0}};
  const std::string svg = svg_heatmap(v, {.title = "load", .row_labels = {"cat", "dog & co"}, .col_labels = {"e0", "e1", "e2"}});
  std::map<std::string, int> counts;
  ASSERT_EQ(check_xml(svg, &counts), "") << svg;
  EXPECT_EQ(count_of(svg, "<rect class=\"cell\""), 6u);
  EXPECT_EQ(count_of(svg, "class=\"row-label\""), 2u);
  EXPECT_EQ(count_of(svg, "class=\"col-label\""), 3u);
  EXPECT_EQ(count_of(svg, "class=\"value\""), 6u);  // small matrix: values written in the cells
  EXPECT_EQ(count_of(svg, "<rect class=\"colorbar\""), 32u);
  EXPECT_NE(svg.find("dog &amp; co"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#dddddd\""), std::string::npos);  // NaN cell
  EXPECT_NE(svg.find("fill=\"#440154\""), std::string::npos);  // the minimum
  EXPECT_NE(svg.find("fill=\"#fde725\""), std::string::npos);  // the maximum
  EXPECT_NE(svg.find("<title>cat, e1: 0.5</title>"), std::string::npos);
}

TEST(Svg, LargeHeatmapIsNotAnnotated) {
  std::vector<std::vector<double>> v(30, std::vector<double>(64));
  for (size_t r = 0; r < v.size(); ++r)
    for (size_t c = 0; c < v[r].size(); ++c) v[r][c] = double(r * c);
  const std::string svg = svg_heatmap(v);
  ASSERT_EQ(check_xml(svg), "");
  EXPECT_EQ(count_of(svg, "<rect class=\"cell\""), 30u * 64u);
  EXPECT_EQ(count_of(svg, "class=\"value\""), 0u);
  EXPECT_THROW(svg_heatmap({{1, 2}, {3}}), moelab::Error);
  EXPECT_THROW(svg_heatmap({{1, 2}}, {.row_labels = {"a", "b"}}), moelab::Error);
}

TEST(Csv, QuotingAndRoundTrip) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_number(0.1), "0.1");
  EXPECT_EQ(csv_number(1e-7), "1e-07");
  CsvTable t({"label", "expert 0", "expert,1"});
  t.row("class \"3\"", {0.25, 0.75}).row({"x\ny", "1", "2"});
  EXPECT_EQ(t.text(), "label,expert 0,\"expert,1\"\n\"class \"\"3\"\"\",0.25,0.75\n\"x\ny\",1,2\n");
  EXPECT_EQ(t.rows(), 2u);
  auto rows = parse_csv(t.text());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"class \"3\"", "0.25", "0.75"}));
  EXPECT_EQ(rows[2][0], "x\ny");
  EXPECT_THROW(t.row({"only one"}), moelab::Error);
}
