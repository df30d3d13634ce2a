#pragma once
// Self-contained inline SVG for the run report: line charts and heatmaps as strings, with no scripts,
// external fonts or ids, so several fit in one HTML page. Options: docs/io.md (SVG and CSV for reports).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::io {

// Escapes & < > " ' for HTML/SVG text and attribute values.
std::string html_escape(std::string_view text);

// Up to about `target` round tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Powers of ten covering [lo, hi] (lo > 0), with 2x and 5x ticks when the range spans under two decades.
std::vector<double> log_ticks(double lo, double hi);
// Categorical colour i (the 10 "tab10" colours, cycled), "#1f77b4".
std::string palette_color(size_t i);
// Viridis colour map at t in [0, 1], "#440154" .. "#fde725".
std::string viridis(double t);

struct ChartSeries {
  std::string name{};
  std::vector<double> x{}, y{};  // NaN/inf (or <= 0 on a log axis) break the line
  std::string color{};       // "" -> palette_color(index)
  bool dashed = false;
};

struct LineChartOptions {
  std::string title{}, x_label{}, y_label{};
  int width = 640, height = 360;
  bool log_x = false, log_y = false;
  std::optional<double> y_min{}, y_max{};  // fixed y range (otherwise from the data)
};

// One <path class="series"> per series, axes with ticks and grid, a legend entry per named series.
std::string svg_line_chart(const std::vector<ChartSeries>& series, const LineChartOptions& options = {});

struct HeatmapOptions {
  std::string title{}, x_label{}, y_label{};
  std::vector<std::string> row_labels{}, col_labels{};  // empty -> row/column numbers
  int cell = 0;                                     // cell size in px; 0 -> fit about 640 px wide
  std::optional<double> vmin{}, vmax{};             // colour scale range (otherwise from the data)
  int annotate = -1;                                // write values in cells: 1 yes, 0 no, -1 when cells are large enough
  int digits = 2;                                   // significant digits of annotations
};

// rows x cols values (rows may not be ragged): <rect class="cell"> per value with a <title> tooltip,
// row/column labels, and a colour bar with its range.
std::string svg_heatmap(const std::vector<std::vector<double>>& values, const HeatmapOptions& options = {});

}  // namespace moelab::io
