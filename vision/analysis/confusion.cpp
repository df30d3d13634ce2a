#include "vision/analysis/confusion.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/util/check.h"

namespace moelab::vision {
namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string name_of(const std::vector<std::string>& names, int c) {
  return c < static_cast<int>(names.size()) ? names[c] : std::to_string(c);
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(int num_classes) : num_classes_(num_classes) {
  MOELAB_CHECK(num_classes > 0, "a confusion matrix needs at least one class, got " << num_classes);
  counts_.assign(static_cast<size_t>(num_classes) * num_classes, 0);
}

void ConfusionMatrix::add(int64_t truth, int64_t predicted) {
  MOELAB_CHECK(truth >= 0 && truth < num_classes_ && predicted >= 0 && predicted < num_classes_,
               "confusion matrix of " << num_classes_ << " classes: (truth " << truth << ", predicted " << predicted
                                      << ") is out of range");
  counts_[truth * num_classes_ + predicted]++;
}

void ConfusionMatrix::add(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted) {
  MOELAB_CHECK(truth.size() == predicted.size(),
               "confusion matrix: " << truth.size() << " labels but " << predicted.size() << " predictions");
  for (size_t i = 0; i < truth.size(); ++i) add(truth[i], predicted[i]);
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t c : counts_) t += c;
  return t;
}

double ConfusionMatrix::accuracy() const {
  int64_t correct = 0;
  for (int c = 0; c < num_classes_; ++c) correct += count(c, c);
  const int64_t t = total();
  return t == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(t);
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
  std::vector<double> out(num_classes_, 0.0);
  for (int c = 0; c < num_classes_; ++c) {
    int64_t row = 0;
    for (int p = 0; p < num_classes_; ++p) row += count(c, p);
    if (row > 0) out[c] = static_cast<double>(count(c, c)) / static_cast<double>(row);
  }
  return out;
}

std::string ConfusionMatrix::to_csv(const std::vector<std::string>& names) const {
  std::ostringstream os;
  os << "truth\\predicted";
  for (int p = 0; p < num_classes_; ++p) os << ",\"" << name_of(names, p) << "\"";
  os << "\n";
  for (int c = 0; c < num_classes_; ++c) {
    os << "\"" << name_of(names, c) << "\"";
    for (int p = 0; p < num_classes_; ++p) os << "," << count(c, p);
    os << "\n";
  }
  return os.str();
}

std::string ConfusionMatrix::to_html(const std::vector<std::string>& names) const {
  std::ostringstream os;
  const std::vector<double> recall = per_class_accuracy();
  os << "<table class=\"confusion\"><tr><th>true \\ predicted</th>";
  for (int p = 0; p < num_classes_; ++p) os << "<th>" << html_escape(name_of(names, p)) << "</th>";
  os << "<th>accuracy</th></tr>\n";
  for (int c = 0; c < num_classes_; ++c) {
    int64_t row = 0;
    for (int p = 0; p < num_classes_; ++p) row += count(c, p);
    os << "<tr><th>" << html_escape(name_of(names, c)) << "</th>";
    for (int p = 0; p < num_classes_; ++p) {
      const double share = row ? static_cast<double>(count(c, p)) / static_cast<double>(row) : 0.0;
      char colour[64];
      if (p == c)
        std::snprintf(colour, sizeof colour, "rgba(44,160,44,%.2f)", share);
      else
        std::snprintf(colour, sizeof colour, "rgba(214,39,40,%.2f)", std::min(1.0, 3 * share));
      os << "<td style=\"background:" << colour << ";text-align:right\">" << count(c, p) << "</td>";
    }
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.1f%%", 100.0 * recall[c]);
    os << "<td style=\"text-align:right\">" << acc << "</td></tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

}  // namespace moelab::vision
