#include "core/io/svg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/util/check.h"

namespace moelab::io {
namespace {

std::string num(double v) {  // compact coordinates: 12.5, 300
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

// Tick label: "0.001", "250", "1e+06" style through %g.
std::string tick_label(double v) {
  if (std::fabs(v) < 1e-12) return "0";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string value_label(double v, int digits) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*g", std::max(1, digits), v);
  return buf;
}

std::string text_element(double x, double y, std::string_view text, std::string_view extra = "") {
  std::string out = "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"";
  if (!extra.empty()) out += " " + std::string(extra);
  return out + ">" + html_escape(text) + "</text>";
}

std::string svg_open(int width, int height, std::string_view title) {
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                    std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"11\">";
  if (!title.empty()) out += "<title>" + html_escape(title) + "</title>";
  return out;
}

// Maps data values to pixels on one axis, linear or log10.
struct Axis {
  double lo = 0, hi = 1;
  double p0 = 0, p1 = 1;  // pixel positions of lo and hi
  bool log = false;
  double map(double v) const {
    double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return p0 + (a - l) / (h - l) * (p1 - p0);
  }
  bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

// Range of usable values, widened when empty or a single point.
std::pair<double, double> data_range(const std::vector<double>& values, bool log, bool pad) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values)
    if (std::isfinite(v) && (!log || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(lo <= hi)) return log ? std::pair(1.0, 10.0) : std::pair(0.0, 1.0);
  if (lo == hi) return log ? std::pair(lo / 2, hi * 2) : std::pair(lo - (lo == 0 ? 1 : std::fabs(lo) * 0.1), hi + (hi == 0 ? 1 : std::fabs(hi) * 0.1));
  if (pad && !log) {
    double d = (hi - lo) * 0.05;
    return {lo - d, hi + d};
  }
  if (pad && log) {
    double f = std::pow(hi / lo, 0.05);
    return {lo / f, hi * f};
  }
  return {lo, hi};
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(std::isfinite(lo) && std::isfinite(hi)) || hi <= lo) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag * 1.0000001) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return out;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> out;
  if (!(lo > 0) || !(hi >= lo)) return out;
  const int a = static_cast<int>(std::floor(std::log10(lo) + 1e-9)), b = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  const bool fine = std::log10(hi / lo) < 2;  // under two decades: 1-2-5 ticks
  for (int e = a; e <= b; ++e)
    for (double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
      double t = m * std::pow(10.0, e);
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) out.push_back(t);
    }
  return out;
}

std::string palette_color(size_t i) {
  static const char* const kTab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kTab10[i % 10];
}

std::string viridis(double t) {
  // Nine samples of matplotlib's viridis, interpolated linearly.
  static const std::array<std::array<double, 3>, 9> kStops = {{{68, 1, 84},
                                                              {71, 44, 122},
                                                              {59, 81, 139},
                                                              {44, 113, 142},
                                                              {33, 144, 141},
                                                              {39, 173, 129},
                                                              {92, 200, 99},
                                                              {170, 220, 50},
                                                              {253, 231, 37}}};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
  const size_t i = std::min<size_t>(static_cast<size_t>(t), kStops.size() - 2);
  const double f = t - double(i);
  char buf[8];
  int rgb[3];
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<int>(std::lround(kStops[i][c] * (1 - f) + kStops[i + 1][c] * f));
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

std::string svg_line_chart(const std::vector<ChartSeries>& series, const LineChartOptions& o) {
  for (const auto& s : series)
    MOELAB_CHECK(s.x.size() == s.y.size(), "series '" << s.name << "' has " << s.x.size() << " x values and "
                                                      << s.y.size() << " y values");
  size_t legend_chars = 0;
  for (const auto& s : series) legend_chars = std::max(legend_chars, s.name.size());
  const double legend_w = legend_chars ? 30 + 6.5 * double(std::min<size_t>(legend_chars, 30)) : 0;
  const double left = 62, right = 16 + legend_w, top = o.title.empty() ? 14 : 30, bottom = o.x_label.empty() ? 30 : 46;
  const double W = o.width, H = o.height;

  std::vector<double> xs, ys;
  for (const auto& s : series) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  auto [x_lo, x_hi] = data_range(xs, o.log_x, false);
  auto [y_lo, y_hi] = data_range(ys, o.log_y, true);
  if (o.y_min) y_lo = *o.y_min;
  if (o.y_max) y_hi = *o.y_max;
  if (!(y_hi > y_lo)) y_hi = y_lo + 1;
  const Axis ax{x_lo, x_hi, left, W - right, o.log_x}, ay{y_lo, y_hi, H - bottom, top, o.log_y};

  std::ostringstream os;
  os << svg_open(o.width, o.height, o.title);
  os << "<rect x=\"0\" y=\"0\" width=\"" << o.width << "\" height=\"" << o.height << "\" fill=\"white\"/>";
  if (!o.title.empty()) os << text_element(W / 2, 18, o.title, "text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\"");

  // Grid, ticks and their labels.
  const std::vector<double> xt = o.log_x ? log_ticks(x_lo, x_hi) : nice_ticks(x_lo, x_hi, 6);
  const std::vector<double> yt = o.log_y ? log_ticks(y_lo, y_hi) : nice_ticks(y_lo, y_hi, 5);
  for (double t : xt) {
    const double px = ax.map(t);
    os << "<line class=\"tick\" x1=\"" << num(px) << "\" y1=\"" << num(top) << "\" x2=\"" << num(px) << "\" y2=\""
       << num(H - bottom + 4) << "\" stroke=\"#e5e5e5\"/>";
    os << text_element(px, H - bottom + 16, tick_label(t), "text-anchor=\"middle\"");
  }
  for (double t : yt) {
    const double py = ay.map(t);
    os << "<line class=\"tick\" x1=\"" << num(left - 4) << "\" y1=\"" << num(py) << "\" x2=\"" << num(W - right)
       << "\" y2=\"" << num(py) << "\" stroke=\"#e5e5e5\"/>";
    os << text_element(left - 7, py + 4, tick_label(t), "text-anchor=\"end\"");
  }
  os << "<line class=\"axis\" x1=\"" << num(left) << "\" y1=\"" << num(H - bottom) << "\" x2=\"" << num(W - right)
     << "\" y2=\"" << num(H - bottom) << "\" stroke=\"#333\"/>";
  os << "<line class=\"axis\" x1=\"" << num(left) << "\" y1=\"" << num(top) << "\" x2=\"" << num(left) << "\" y2=\""
     << num(H - bottom) << "\" stroke=\"#333\"/>";
  if (!o.x_label.empty()) os << text_element((left + W - right) / 2, H - 8, o.x_label, "text-anchor=\"middle\"");
  if (!o.y_label.empty()) {
    const double cx = 14, cy = (top + H - bottom) / 2;
    os << text_element(cx, cy, o.y_label,
                       "text-anchor=\"middle\" transform=\"rotate(-90 " + num(cx) + " " + num(cy) + ")\"");
  }

  // One path per series; unusable points start a new sub-path. Lone points get a marker.
  for (size_t i = 0; i < series.size(); ++i) {
    const ChartSeries& s = series[i];
    const std::string color = s.color.empty() ? palette_color(i) : s.color;
    std::string d;
    std::vector<std::pair<double, double>> lone;
    size_t run = 0;
    std::pair<double, double> run_start;
    for (size_t k = 0; k <= s.x.size(); ++k) {
      const bool ok = k < s.x.size() && ax.usable(s.x[k]) && ay.usable(s.y[k]);
      if (!ok) {
        if (run == 1) lone.push_back(run_start);
        run = 0;
        continue;
      }
      const double px = ax.map(s.x[k]), py = ay.map(std::clamp(s.y[k], std::min(y_lo, y_hi), std::max(y_lo, y_hi)));
      d += (run == 0 ? (d.empty() ? "M" : " M") : " L") + num(px) + " " + num(py);
      if (run == 0) run_start = {px, py};
      ++run;
    }
    os << "<path class=\"series\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\""
       << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << " d=\"" << (d.empty() ? "M0 0" : d) << "\"><title>"
       << html_escape(s.name) << "</title></path>";
    for (auto [px, py] : lone)
      os << "<circle class=\"point\" cx=\"" << num(px) << "\" cy=\"" << num(py) << "\" r=\"2.5\" fill=\"" << color << "\"/>";
  }

  // Legend to the right of the plot.
  double ly = top + 8;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].name.empty()) continue;
    const std::string color = series[i].color.empty() ? palette_color(i) : series[i].color;
    const double lx = W - right + 10;
    os << "<g class=\"legend\"><line x1=\"" << num(lx) << "\" y1=\"" << num(ly) << "\" x2=\"" << num(lx + 16)
       << "\" y2=\"" << num(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2\""
       << (series[i].dashed ? " stroke-dasharray=\"5 3\"" : "") << "/>"
       << text_element(lx + 20, ly + 4, series[i].name) << "</g>";
    ly += 16;
  }
  os << "</svg>";
  return os.str();
}

std::string svg_heatmap(const std::vector<std::vector<double>>& values, const HeatmapOptions& o) {
  const size_t rows = values.size(), cols = rows ? values[0].size() : 0;
  for (size_t r = 0; r < rows; ++r)
    MOELAB_CHECK(values[r].size() == cols, "heatmap row " << r << " has " << values[r].size() << " values, row 0 has " << cols);
  MOELAB_CHECK(o.row_labels.empty() || o.row_labels.size() == rows,
               "heatmap has " << rows << " rows but " << o.row_labels.size() << " row labels");
  MOELAB_CHECK(o.col_labels.empty() || o.col_labels.size() == cols,
               "heatmap has " << cols << " columns but " << o.col_labels.size() << " column labels");
  auto row_label = [&](size_t r) { return o.row_labels.empty() ? std::to_string(r) : o.row_labels[r]; };
  auto col_label = [&](size_t c) { return o.col_labels.empty() ? std::to_string(c) : o.col_labels[c]; };

  const double cell = o.cell > 0 ? o.cell : std::clamp(560.0 / std::max<size_t>(cols, 1), 6.0, 40.0);
  size_t row_chars = 1, col_chars = 1;
  for (size_t r = 0; r < rows; ++r) row_chars = std::max(row_chars, row_label(r).size());
  for (size_t c = 0; c < cols; ++c) col_chars = std::max(col_chars, col_label(c).size());
  const bool rotate_cols = double(col_chars) * 6.5 > cell;
  const double left = 12 + 6.5 * double(std::min<size_t>(row_chars, 40)) + (o.y_label.empty() ? 0 : 18);
  const double top = o.title.empty() ? 10 : 30;
  const double col_label_h = rotate_cols ? 6.0 * double(std::min<size_t>(col_chars, 30)) + 12 : 18;
  const double bottom = col_label_h + (o.x_label.empty() ? 6 : 24);
  const double bar_x = left + cell * double(cols) + 16, bar_w = 14;
  const int bands = 32;  // the colour bar: bands from hi (top) to lo (bottom)
  const double bar_h = std::max(40.0, cell * double(rows)), band_h = bar_h / bands;
  const int W = static_cast<int>(std::ceil(bar_x + bar_w + 60)), H = static_cast<int>(std::ceil(top + bar_h + bottom));

  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& row : values)
    for (double v : row)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (o.vmin) lo = *o.vmin;
  if (o.vmax) hi = *o.vmax;
  if (!(lo <= hi)) lo = 0, hi = 1;
  const double span = hi > lo ? hi - lo : 1;
  const bool annotate = o.annotate == 1 || (o.annotate == -1 && cell >= 22 && rows * cols <= 400);

  std::ostringstream os;
  os << svg_open(W, H, o.title);
  os << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"white\"/>";
  if (!o.title.empty()) os << text_element(W / 2.0, 18, o.title, "text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\"");
  for (size_t r = 0; r < rows; ++r) {
    const double y = top + cell * double(r);
    os << text_element(left - 5, y + cell / 2 + 4, row_label(r), "class=\"row-label\" text-anchor=\"end\"");
    for (size_t c = 0; c < cols; ++c) {
      const double v = values[r][c], x = left + cell * double(c);
      const double t = (v - lo) / span;
      const std::string fill = std::isfinite(v) ? viridis(t) : "#dddddd";
      os << "<rect class=\"cell\" x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"" << num(cell) << "\" height=\""
         << num(cell) << "\" fill=\"" << fill << "\"><title>" << html_escape(row_label(r) + ", " + col_label(c) + ": " + value_label(v, 4))
         << "</title></rect>";
      if (annotate)
        os << text_element(x + cell / 2, y + cell / 2 + 4, value_label(v, o.digits),
                           std::string("class=\"value\" text-anchor=\"middle\" font-size=\"") +
                               num(std::min(11.0, cell / 3)) + "\" fill=\"" + (std::isfinite(v) && t > 0.6 ? "#000" : "#fff") + "\"");
    }
  }
  const double label_y = top + cell * double(rows) + 6;
  for (size_t c = 0; c < cols; ++c) {
    const double x = left + cell * (double(c) + 0.5);
    if (rotate_cols)
      os << text_element(x, label_y + 4, col_label(c),
                         "class=\"col-label\" text-anchor=\"end\" transform=\"rotate(-60 " + num(x) + " " + num(label_y + 4) + ")\"");
    else
      os << text_element(x, label_y + 10, col_label(c), "class=\"col-label\" text-anchor=\"middle\"");
  }
  if (!o.x_label.empty()) os << text_element(left + cell * double(cols) / 2, H - 6, o.x_label, "text-anchor=\"middle\"");
  if (!o.y_label.empty()) {
    const double cx = 12, cy = top + cell * double(rows) / 2;
    os << text_element(cx, cy, o.y_label, "text-anchor=\"middle\" transform=\"rotate(-90 " + num(cx) + " " + num(cy) + ")\"");
  }
  // The colour bar, with both ends labelled.
  for (int b = 0; b < bands; ++b)
    os << "<rect class=\"colorbar\" x=\"" << num(bar_x) << "\" y=\"" << num(top + band_h * b) << "\" width=\"" << num(bar_w)
       << "\" height=\"" << num(band_h + 0.5) << "\" fill=\"" << viridis(1 - (b + 0.5) / bands) << "\"/>";
  os << text_element(bar_x + bar_w + 4, top + 9, value_label(hi, 3), "class=\"scale\"");
  os << text_element(bar_x + bar_w + 4, top + bar_h, value_label(lo, 3), "class=\"scale\"");
  os << "</svg>";
  return os.str();
}

}  // namespace moelab::io
