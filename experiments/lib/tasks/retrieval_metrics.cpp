#include "experiments/lib/tasks/retrieval_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/util/check.h"

namespace moelab::experiments {

int64_t rank_of_truth(const std::vector<double>& scores, int64_t truth) {
  MOELAB_CHECK(truth >= 0 && truth < static_cast<int64_t>(scores.size()),
               "rank_of_truth: truth " << truth << " outside the " << scores.size() << " candidates");
  const double t = scores[static_cast<size_t>(truth)];
  int64_t rank = 0;
  for (int64_t j = 0; j < static_cast<int64_t>(scores.size()); ++j) {
    const double s = scores[static_cast<size_t>(j)];
    if (s > t || (s == t && j < truth)) ++rank;
  }
  return rank;
}

DirectionRecall recall_from_ranks(const std::vector<int64_t>& ranks) {
  DirectionRecall d;
  if (ranks.empty()) return d;
  const double n = static_cast<double>(ranks.size());
  double sum = 0;
  for (int64_t r : ranks) {
    d.r1 += r < 1;
    d.r5 += r < 5;
    d.r10 += r < 10;
    sum += static_cast<double>(r);
  }
  d.r1 /= n;
  d.r5 /= n;
  d.r10 /= n;
  d.mean_rank = sum / n + 1;
  std::vector<int64_t> sorted = ranks;
  std::sort(sorted.begin(), sorted.end());
  const size_t m = sorted.size();
  const double median = m % 2 ? double(sorted[m / 2]) : 0.5 * double(sorted[m / 2 - 1] + sorted[m / 2]);
  d.median_rank = std::floor(median) + 1;
  return d;
}

RetrievalRecall retrieval_recall(const std::vector<double>& sim, int64_t n) {
  MOELAB_CHECK(static_cast<int64_t>(sim.size()) == n * n,
               "retrieval_recall: " << sim.size() << " scores are not " << n << " x " << n);
  std::vector<int64_t> i2t(static_cast<size_t>(n)), t2i(static_cast<size_t>(n));
  std::vector<double> line(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) line[static_cast<size_t>(j)] = sim[static_cast<size_t>(i * n + j)];
    i2t[static_cast<size_t>(i)] = rank_of_truth(line, i);
  }
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < n; ++i) line[static_cast<size_t>(i)] = sim[static_cast<size_t>(i * n + j)];
    t2i[static_cast<size_t>(j)] = rank_of_truth(line, j);
  }
  return {recall_from_ranks(i2t), recall_from_ranks(t2i)};
}

double pair_accuracy(const std::vector<double>& positive, const std::vector<double>& negative) {
  MOELAB_CHECK(positive.size() == negative.size(),
               "pair_accuracy: " << positive.size() << " positives against " << negative.size() << " negatives");
  if (positive.empty()) return std::numeric_limits<double>::quiet_NaN();
  double right = 0;
  for (size_t i = 0; i < positive.size(); ++i) right += positive[i] > negative[i];
  return right / static_cast<double>(positive.size());
}

double modality_specific_share(const std::vector<double>& counts, int64_t rows, int64_t experts, double threshold) {
  MOELAB_CHECK(static_cast<int64_t>(counts.size()) == rows * experts,
               "modality_specific_share: " << counts.size() << " counts are not " << rows << " x " << experts);
  int64_t used = 0, specific = 0;
  for (int64_t e = 0; e < experts; ++e) {
    double total = 0, top = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double c = counts[static_cast<size_t>(r * experts + e)];
      total += c;
      top = std::max(top, c);
    }
    if (total <= 0) continue;
    ++used;
    specific += top > threshold * total;
  }
  return used ? double(specific) / double(used) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace moelab::experiments
