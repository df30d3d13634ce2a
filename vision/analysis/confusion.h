#pragma once
// Classification bookkeeping: a confusion matrix (rows = true class, columns = predicted class) with
// accuracy and per-class accuracy (recall), CSV output and an HTML table for the report.
#include <cstdint>
#include <string>
#include <vector>

namespace moelab::vision {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);
  void add(int64_t truth, int64_t predicted);
  void add(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted);

  int num_classes() const { return num_classes_; }
  int64_t count(int truth, int predicted) const { return counts_[truth * num_classes_ + predicted]; }
  int64_t total() const;
  double accuracy() const;                        // 0 when empty
  std::vector<double> per_class_accuracy() const;  // correct / examples of each true class (0 when none)

  // "truth\\predicted,<names...>" header then one row per true class.
  std::string to_csv(const std::vector<std::string>& class_names) const;
  // A table with counts shaded by their share of the row; the diagonal in green, errors in red.
  std::string to_html(const std::vector<std::string>& class_names) const;

 private:
  int num_classes_;
  std::vector<int64_t> counts_;
};

}  // namespace moelab::vision
