#pragma once
// Retrieval measurements on a similarity matrix with open_clip's conventions (recall@k both ways, median
// rank), hard-negative accuracy, zero-shot class scores and the modality share of experts.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moelab::experiments {

// Rank (0-based) of the true item of query q among candidates scores[q][*], the true item being `truth`:
// the candidates scoring strictly higher, plus the tied candidates of lower index (the position in a
// stable descending sort, as torch.argsort(descending=True, stable=True) gives).
int64_t rank_of_truth(const std::vector<double>& scores, int64_t truth);

struct DirectionRecall {
  double r1 = 0, r5 = 0, r10 = 0;
  double median_rank = 0;  // floor(median of the 0-based ranks) + 1, as open_clip
  double mean_rank = 0;    // mean of the 0-based ranks + 1
};
struct RetrievalRecall {
  DirectionRecall image_to_text, text_to_image;
};

// sim: (N images x N texts) row-major, image i matching text i. image_to_text ranks each row,
// text_to_image each column.
RetrievalRecall retrieval_recall(const std::vector<double>& sim, int64_t n);
// The recall and ranks of one direction from its 0-based ranks.
DirectionRecall recall_from_ranks(const std::vector<int64_t>& ranks);

// Fraction of pairs whose true score beats the negative's strictly (a tie counts as a miss).
double pair_accuracy(const std::vector<double>& positive, const std::vector<double>& negative);

// Share of experts (columns of a modality x expert count matrix, `rows` modalities) taking more than
// `threshold` of their traffic from one modality; experts with no traffic are left out. NaN when none had any.
double modality_specific_share(const std::vector<double>& counts, int64_t rows, int64_t experts, double threshold);

}  // namespace moelab::experiments
