#include "experiments/lib/tasks/classify_report.h"

#include <cstdio>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/svg.h"

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
