#pragma once
// The retrieval task's report fragment (report/sections/retrieval.html) and files (retrieval/*.csv, the
// scene preview PNG): recall tables, hard negatives, zero-shot accuracy, modality x expert routing.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace moelab::experiments {

struct ModalityRouting {
  std::string path;
  int64_t experts = 0;
  std::vector<double> counts;  // (2 x experts): image row, text row
  double share = 0;            // experts with > 90% of their traffic from one modality
};
struct RetrievalExample {
  struct Hit {
    std::string caption;
    double score = 0;
    bool correct = false;
  };
  int64_t scene = 0;
  std::string truth;
  std::vector<Hit> top;
};
struct RetrievalReportData {
  std::map<std::string, double> metrics;
  bool one_tower = false;
  std::string text_tower;
  std::vector<ModalityRouting> routing;
  std::vector<std::pair<std::string, double>> zeroshot_templates;
  std::vector<RetrievalExample> examples;
  cv::Mat preview;  // BGR sheet of test scenes with captions and negatives (empty: none)
};

std::string retrieval_report_html(const RetrievalReportData& r, const std::string& preview_base64);
// Writes retrieval/metrics.csv, retrieval/modality_experts_<path>.csv, retrieval/scene_preview.png and the section.
void write_retrieval_report(const std::filesystem::path& run_dir, const RetrievalReportData& r);

}  // namespace moelab::experiments
