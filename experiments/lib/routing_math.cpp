#include "experiments/lib/routing_math.h"

#include <algorithm>
#include <cmath>

namespace moelab::experiments {

LoadStats load_stats(const std::vector<double>& counts) {
  LoadStats s;
  const size_t e = counts.size();
  s.fraction.assign(e, 0.0);
  if (e == 0) return s;
  double total = 0, peak = 0;
  for (double c : counts) {
    total += c;
    peak = std::max(peak, c);
    if (c <= 0) ++s.unused;
  }
  if (total <= 0) return s;
  double mean = total / static_cast<double>(e), var = 0;
  for (size_t i = 0; i < e; ++i) {
    s.fraction[i] = counts[i] / total;
    var += (counts[i] - mean) * (counts[i] - mean);
  }
  var /= static_cast<double>(e);
  s.cv = std::sqrt(var) / mean;
  s.max_over_mean = peak / mean;
  return s;
}

double mutual_information_bits(const std::vector<double>& counts, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || static_cast<int64_t>(counts.size()) != rows * cols) return 0;
  std::vector<double> pr(rows, 0.0), pc(cols, 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      double v = counts[r * cols + c];
      pr[r] += v;
      pc[c] += v;
      total += v;
    }
  if (total <= 0) return 0;
  double mi = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      double v = counts[r * cols + c];
      if (v <= 0) continue;
      mi += (v / total) * std::log2(v * total / (pr[r] * pc[c]));
    }
  return std::max(0.0, mi);
}

double label_entropy_bits(const std::vector<double>& counts, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || static_cast<int64_t>(counts.size()) != rows * cols) return 0;
  std::vector<double> pr(rows, 0.0);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      pr[r] += counts[r * cols + c];
      total += counts[r * cols + c];
    }
  if (total <= 0) return 0;
  double h = 0;
  for (double p : pr)
    if (p > 0) h -= (p / total) * std::log2(p / total);
  return h;
}

}  // namespace moelab::experiments
