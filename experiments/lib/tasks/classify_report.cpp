#include "experiments/lib/tasks/classify_report.h"

#include <cstdio>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/svg.h"
#include "core/moe/stats.h"

namespace moelab::experiments {
namespace {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100.0 * v);
  return b;
}

std::string fixed(double v, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

}  // namespace

std::string classify_report_html(const ClassifyReport& r) {
  using io::html_escape;
  std::ostringstream h;
  h << "<section id=\"classify\">\n<h2>Classification (" << html_escape(r.set_name) << " set)</h2>\n";
  h << "<p>accuracy <b>" << pct(r.accuracy) << "</b> on " << r.confusion.total() << " images, cross-entropy "
    << fixed(r.loss, 4) << ". Rows: true class; columns: predicted class.</p>\n";
  h << r.confusion.to_html(r.class_names);
  h << "</section>\n";

  if (!r.routing.empty()) {
    h << "<section id=\"classify-routing\">\n<h2>Which experts take which classes (" << html_escape(r.set_name)
      << " set)</h2>\n<p>Each row is one class: the share of its tokens' assignments that went to each expert. "
         "Mutual information I(class; expert) in bits: 0 when routing ignores the class, log2(min(classes, "
         "experts)) at most.</p>\n<div class=\"grid\">\n";
    for (size_t i = 0; i < r.routing.size(); ++i) {
      const LayerRouting& lr = r.routing[i];
      const int64_t experts = r.expert_counts[i];
      if (experts == 0 || lr.label_expert_counts.empty()) continue;
      const int64_t rows = static_cast<int64_t>(lr.label_expert_counts.size()) / experts;
      std::vector<std::vector<double>> joint(rows, std::vector<double>(experts)), shares = joint;
      for (int64_t c = 0; c < rows; ++c) {
        double row_sum = 0;
        for (int64_t e = 0; e < experts; ++e) row_sum += joint[c][e] = lr.label_expert_counts[c * experts + e];
        for (int64_t e = 0; e < experts; ++e) shares[c][e] = row_sum > 0 ? joint[c][e] / row_sum : 0.0;
      }
      const double mi = moe::mutual_information_bits(joint);
      io::HeatmapOptions opt;
      opt.title = "block " + std::to_string(lr.layer) + ": I(class; expert) = " + fixed(mi, 3) + " bits";
      opt.x_label = "expert";
      opt.y_label = "class";
      opt.row_labels = r.class_names;
      for (int64_t e = 0; e < experts; ++e) opt.col_labels.push_back("e" + std::to_string(e));
      opt.vmin = 0.0;
      opt.vmax = 1.0;
      h << "<div>" << io::svg_heatmap(shares, opt) << "</div>\n";
    }
    h << "</div>\n</section>\n";
  }

  if (!r.patch_map_png.empty()) {
    h << "<section id=\"patch-maps\">\n<h2>Per-patch expert maps</h2>\n<p>" << html_escape(r.patch_map_caption)
      << "</p>\n<img alt=\"per-patch expert maps\" style=\"image-rendering:pixelated;max-width:100%\" "
         "src=\"data:image/png;base64,"
      << r.patch_map_png << "\">\n</section>\n";
  }
  return h.str();
}

void write_classify_report(const std::filesystem::path& run_dir, const ClassifyReport& r) {
  namespace fs = std::filesystem;
  fs::create_directories(run_dir / "classify");
  io::write_file_atomic((run_dir / "classify" / ("confusion_" + r.set_name + ".csv")).string(),
                        r.confusion.to_csv(r.class_names));
  std::ostringstream pc;
  pc << "class,name,accuracy,images\n";
  const std::vector<double> acc = r.confusion.per_class_accuracy();
  for (int c = 0; c < r.confusion.num_classes(); ++c) {
    int64_t n = 0;
    for (int p = 0; p < r.confusion.num_classes(); ++p) n += r.confusion.count(c, p);
    pc << c << ",\"" << (c < static_cast<int>(r.class_names.size()) ? r.class_names[c] : std::to_string(c)) << "\","
       << fixed(acc[c], 6) << "," << n << "\n";
  }
  io::write_file_atomic((run_dir / "classify" / ("per_class_accuracy_" + r.set_name + ".csv")).string(), pc.str());
  fs::create_directories(run_dir / "report" / "sections");
  io::write_file_atomic((run_dir / "report" / "sections" / "classify.html").string(), classify_report_html(r));
}

}  // namespace moelab::experiments
