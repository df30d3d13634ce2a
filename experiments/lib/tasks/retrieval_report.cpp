#include "experiments/lib/tasks/retrieval_report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/svg.h"
#include "vision/analysis/patch_map.h"
#include "vision/data/hard_negatives.h"

namespace moelab::experiments {
namespace {

std::string num(double v, int digits = 3) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
double get(const std::map<std::string, double>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? std::nan("") : it->second;
}

}  // namespace

std::string retrieval_report_html(const RetrievalReportData& r, const std::string& preview_base64) {
  using io::html_escape;
  const auto& m = r.metrics;
  std::ostringstream h;
  h << "<section id=\"retrieval\">\n<h2>Image-text retrieval</h2>\n<p>"
    << (r.one_tower ? "One shared MoE tower (LIMoE)" : "Two towers, text tower: " + html_escape(r.text_tower))
    << "; logit scale " << num(get(m, "logit_scale"), 2) << ". Recall@k: the share of queries whose match is among "
    << "the top k of all " << num(1 / get(m, "chance/r1"), 0) << " candidates (chance at k = 1: "
    << num(get(m, "chance/r1"), 4) << "); median rank 1 = best.</p>\n";
  h << "<table><tr><th>set</th><th>direction</th><th>R@1</th><th>R@5</th><th>R@10</th><th>median rank</th></tr>\n";
  for (const char* set : {"test", "heldout"})
    for (const char* dir : {"i2t", "t2i"}) {
      const std::string p = std::string(set) + "/" + dir;
      h << "<tr><td>" << set << "</td><td>" << (std::string(dir) == "i2t" ? "image &rarr; text" : "text &rarr; image")
        << "</td><td><b>" << num(get(m, p + "_r1")) << "</b></td><td>" << num(get(m, p + "_r5")) << "</td><td>"
        << num(get(m, p + "_r10")) << "</td><td>" << num(get(m, p + "_median_rank"), 0) << "</td></tr>\n";
    }
  h << "</table>\n<h3>Hard negatives</h3>\n<p>Accuracy of scoring the true caption above its edited negative with "
       "the same image (chance 0.5).</p>\n<table><tr><th>kind</th><th>test</th><th>pairs</th><th>held-out</th>"
       "<th>pairs</th></tr>\n";
  for (int k = 0; k < vision::kNegativeKinds; ++k) {
    const std::string n = vision::negative_kind_name(static_cast<vision::NegativeKind>(k));
    h << "<tr><td>" << n << "</td><td><b>" << num(get(m, "hardneg/" + n + "_accuracy")) << "</b></td><td>"
      << num(get(m, "hardneg/" + n + "_pairs"), 0) << "</td><td>" << num(get(m, "heldout_hardneg/" + n + "_accuracy"))
      << "</td><td>" << num(get(m, "heldout_hardneg/" + n + "_pairs"), 0) << "</td></tr>\n";
  }
  h << "</table>\n<h3>Zero-shot Fashion-MNIST</h3>\n<p>" << num(get(m, "zeroshot/images"), 0)
    << " centred, untinted test items classified by the nearest class prompt embedding: <b>"
    << num(get(m, "zeroshot/fmnist_accuracy")) << "</b> with the prompts of all templates averaged (chance 0.1).</p>\n"
    << "<table><tr><th>template</th><th>accuracy</th></tr>\n";
  for (const auto& [t, a] : r.zeroshot_templates)
    h << "<tr><td>" << html_escape(t) << "</td><td>" << num(a) << "</td></tr>\n";
  h << "</table>\n";
  if (!r.routing.empty()) {
    h << "<h3>Routing by modality</h3>\n<p>Share of each expert's test traffic (image patches and words) per "
         "modality; an expert is modality-specific when one modality gives it more than 90% of its tokens.</p>\n";
    for (const auto& mr : r.routing) {
      h << "<p><b>" << html_escape(mr.path) << "</b>: " << num(mr.share, 2) << " of the used experts are modality-specific</p>\n"
        << "<table><tr><th>modality</th>";
      for (int64_t e = 0; e < mr.experts; ++e) h << "<th>e" << e << "</th>";
      h << "</tr>\n";
      for (int row = 0; row < 2; ++row) {
        h << "<tr><td>" << (row == 0 ? "image" : "text") << "</td>";
        for (int64_t e = 0; e < mr.experts; ++e) {
          const double c = mr.counts[static_cast<size_t>(row * mr.experts + e)];
          const double t = mr.counts[static_cast<size_t>(e)] + mr.counts[static_cast<size_t>(mr.experts + e)];
          const double f = t > 0 ? c / t : 0;
          const int shade = static_cast<int>(255 - 155 * f);
          h << "<td style=\"background:rgb(" << shade << "," << shade << ",255)\">" << num(f, 2) << "</td>";
        }
        h << "</tr>\n";
      }
      h << "</table>\n";
    }
  }
  if (!r.examples.empty()) {
    h << "<h3>Top captions for the first test scenes</h3>\n<table><tr><th>scene</th><th>true caption</th>"
         "<th>top 5 (score; &#10003; = the scene's caption)</th></tr>\n";
    for (const auto& ex : r.examples) {
      h << "<tr><td>" << ex.scene << "</td><td>" << html_escape(ex.truth) << "</td><td>";
      for (const auto& hit : ex.top)
        h << (hit.correct ? "&#10003; " : "") << html_escape(hit.caption) << " (" << num(hit.score) << ")<br>";
      h << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  if (!preview_base64.empty())
    h << "<h3>Scene preview</h3>\n<p>Test scenes with caption variant 0 (white) and a hard negative of each kind the "
         "scene admits (red). Also retrieval/scene_preview.png.</p>\n<img alt=\"scene preview\" "
         "style=\"image-rendering:pixelated;max-width:100%\" src=\"data:image/png;base64,"
      << preview_base64 << "\">\n";
  h << "</section>\n";
  return h.str();
}

void write_retrieval_report(const std::filesystem::path& run_dir, const RetrievalReportData& r) {
  namespace fs = std::filesystem;
  fs::create_directories(run_dir / "retrieval");
  std::ostringstream csv;
  csv << "metric,value\n";
  for (const auto& [k, v] : r.metrics) csv << k << "," << num(v, 6) << "\n";
  io::write_file_atomic((run_dir / "retrieval" / "metrics.csv").string(), csv.str());
  for (const auto& mr : r.routing) {
    std::ostringstream c;
    c << "modality";
    for (int64_t e = 0; e < mr.experts; ++e) c << ",expert_" << e;
    c << "\n";
    for (int row = 0; row < 2; ++row) {
      c << (row == 0 ? "image" : "text");
      for (int64_t e = 0; e < mr.experts; ++e) c << "," << num(mr.counts[static_cast<size_t>(row * mr.experts + e)], 0);
      c << "\n";
    }
    io::write_file_atomic((run_dir / "retrieval" / ("modality_experts_" + mr.path + ".csv")).string(), c.str());
  }
  std::string b64;
  if (!r.preview.empty()) {
    vision::write_png((run_dir / "retrieval" / "scene_preview.png").string(), r.preview);
    b64 = vision::base64_encode(vision::encode_png(r.preview));
  }
  fs::create_directories(run_dir / "report" / "sections");
  io::write_file_atomic((run_dir / "report" / "sections" / "retrieval.html").string(), retrieval_report_html(r, b64));
}

}  // namespace moelab::experiments
