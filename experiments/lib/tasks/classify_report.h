#pragma once
// What the `classify` task adds to a run directory beyond the Trainer's files: the test confusion matrix
// and per-class accuracy (classify/*.csv), per-patch expert maps (routing/patch_maps.png) and an HTML
// fragment with both (report/sections/classify.html).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/lib/task.h"
#include "vision/analysis/confusion.h"
#include "vision/analysis/patch_map.h"

namespace moelab::experiments {

struct ClassifyReport {
  std::string set_name;                    // "test" or "validation"
  double accuracy = 0, loss = 0;
  vision::ConfusionMatrix confusion{1};
  std::vector<std::string> class_names;
  std::string patch_map_png;               // PNG bytes as base64 ("" when there is no map)
  std::string patch_map_caption;
};

// report/sections/classify.html (self-contained: inline SVG, PNG as a data URI).
std::string classify_report_html(const ClassifyReport& report);
// Writes classify/confusion_<set>.csv, classify/per_class_accuracy_<set>.csv and the HTML fragment.
void write_classify_report(const std::filesystem::path& run_dir, const ClassifyReport& report);

}  // namespace moelab::experiments
