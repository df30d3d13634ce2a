#pragma once
// Statistics of routing counts (specs/moe.md §5): load fractions and their spread, and the mutual
// information between a label (class, cluster, game) and the chosen expert.
#include <cstdint>
#include <vector>

namespace moelab::experiments {

struct LoadStats {
  std::vector<double> fraction;  // (E) share of all assignments; sums to 1 (all 0 when nothing was routed)
  double cv = 0;                 // population std / mean of the counts
  double max_over_mean = 0;      // busiest expert's count / mean count
  int64_t unused = 0;            // experts with no assignment
};
LoadStats load_stats(const std::vector<double>& counts);

// Mutual information I(label; expert) in bits of a labels x experts count matrix (row-major,
// rows x cols); 0 for an empty matrix. At most log2(min(rows, cols)).
double mutual_information_bits(const std::vector<double>& counts, int64_t rows, int64_t cols);
// Entropy of the label marginal in bits (the upper bound of the MI that routing can reach).
double label_entropy_bits(const std::vector<double>& counts, int64_t rows, int64_t cols);

}  // namespace moelab::experiments
