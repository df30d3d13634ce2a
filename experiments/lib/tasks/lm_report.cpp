// The `lm` task's report fragment and CSVs: bits per byte per domain and the domain-specialization study.
#include "experiments/lib/tasks/lm_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/svg.h"
#include "core/moe/routing_stats.h"

namespace moelab::experiments {
namespace {

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

bool is_code(const std::string& d) { return d == "cpp" || d == "python"; }
bool is_prose(const std::string& d) {
  for (const char* p : {"en", "de", "es", "it", "ru", "pl", "cs"})
    if (d == p) return true;
  return false;
}

// A distinct light colour per expert (golden-angle hues) for the token backgrounds.
std::string expert_colour(int64_t e) {
  if (e < 0) return "#dddddd";
  char b[48];
  std::snprintf(b, sizeof b, "hsl(%d, 75%%, 78%%)", static_cast<int>(std::fmod(double(e) * 137.508, 360.0)));
  return b;
}

std::vector<double> normalized(std::vector<double> v) {
  double s = 0;
  for (double x : v) s += x;
  if (s > 0)
    for (double& x : v) x /= s;
  return v;
}

}  // namespace

double LayerSpecialization::chance_same_rate() const {
  double r = 0;
  for (double p : normalized(top_counts)) r += p * p;
  return r;
}

CodeProseSplit code_prose_split(const LayerSpecialization& l, const std::vector<std::string>& domains) {
  CodeProseSplit s;
  const int64_t E = l.num_experts, rows = E > 0 ? static_cast<int64_t>(l.domain_expert.size()) / E : 0;
  std::vector<double> code(static_cast<size_t>(E), 0.0), prose(code);
  for (int64_t d = 0; d < rows && d < static_cast<int64_t>(domains.size()); ++d)
    for (int64_t e = 0; e < E; ++e) {
      const double c = l.domain_expert[static_cast<size_t>(d * E + e)];
      if (is_code(domains[d])) code[e] += c;
      if (is_prose(domains[d])) prose[e] += c;
    }
  double nc = 0, np = 0;
  for (int64_t e = 0; e < E; ++e) nc += code[e], np += prose[e];
  if (nc <= 0 || np <= 0) return s;
  std::vector<double> joint = code;
  joint.insert(joint.end(), prose.begin(), prose.end());
  s.mi_bits = moe::mutual_information_bits(joint, 2, E);
  s.group_entropy_bits = moe::label_entropy_bits(joint, 2, E);
  s.code = normalized(code);
  s.prose = normalized(prose);
  for (int64_t e = 0; e < E; ++e) s.total_variation += 0.5 * std::abs(s.code[e] - s.prose[e]);
  s.valid = true;
  return s;
}

std::string lm_report_html(const LmReport& r) {
  using io::html_escape;
  std::ostringstream h;
  const int64_t D = static_cast<int64_t>(r.domains.size());
  h << "<section id=\"lm\">\n<h2>Language model (" << html_escape(r.set_name) << " split)</h2>\n";
  h << "<p>Bits per byte = summed next-token losses (nats) / ln 2 / UTF-8 bytes of the predicted tokens: "
    << "<b>" << fixed(r.bpb.bits_per_byte(), 4) << "</b> over " << r.bpb.total_bytes() << " bytes ("
    << r.bpb.total_tokens() << " tokens, " << fixed(r.bpb.nats_per_token(), 4) << " nats per token).</p>\n";
  h << "<table><tr><th>domain</th><th>tokens</th><th>bytes</th><th>bits per byte</th></tr>\n";
  for (int64_t d = 0; d < D && d < r.bpb.num_domains(); ++d)
    h << "<tr><td>" << html_escape(r.domains[d]) << "</td><td>" << r.bpb.tokens(d) << "</td><td>" << r.bpb.bytes(d)
      << "</td><td>" << fixed(r.bpb.bits_per_byte(d), 4) << "</td></tr>\n";
  h << "</table>\n</section>\n";

  if (r.layers.empty()) return h.str();
  h << "<section id=\"lm-specialization\">\n<h2>Domain specialization of the experts</h2>\n";
  h << "<p>Per MoE layer, on the " << html_escape(r.set_name) << " split: I(domain; expert) in bits (at most "
    << "H(domain)); code (cpp, python) against prose (the fortune languages): the total variation distance of "
    << "their expert distributions and I(code/prose; expert). The claim \"code and prose go to different "
    << "experts\" is taken to hold when the distance is at least " << fixed(kCodeProseThreshold, 2)
    << ". Same-expert rate: the share of consecutive tokens of a sequence whose top expert is the same, against "
    << "the rate if tokens drew experts independently from the layer's load (sum of squared loads).</p>\n";
  h << "<table><tr><th>layer</th><th>I(domain; expert)</th><th>H(domain)</th><th>TV(code, prose)</th>"
       "<th>I(code/prose; expert)</th><th>code and prose apart?</th><th>same-expert rate</th><th>chance rate</th></tr>\n";
  for (const LayerSpecialization& l : r.layers) {
    const CodeProseSplit cp = code_prose_split(l, r.domains);
    const int64_t rows = l.num_experts > 0 ? static_cast<int64_t>(l.domain_expert.size()) / l.num_experts : 0;
    h << "<tr><td>" << html_escape(l.path) << "</td><td>"
      << fixed(moe::mutual_information_bits(l.domain_expert, rows, l.num_experts), 3) << " bits</td><td>"
      << fixed(moe::label_entropy_bits(l.domain_expert, rows, l.num_experts), 3) << " bits</td><td>"
      << (cp.valid ? fixed(cp.total_variation, 3) : "n/a") << "</td><td>" << (cp.valid ? fixed(cp.mi_bits, 3) : "n/a")
      << " bits</td><td>" << (!cp.valid ? "n/a" : cp.total_variation >= kCodeProseThreshold ? "yes" : "no")
      << "</td><td>" << fixed(l.same_rate(), 3) << "</td><td>" << fixed(l.chance_same_rate(), 3) << "</td></tr>\n";
  }
  h << "</table>\n<div class=\"grid\">\n";
  for (const LayerSpecialization& l : r.layers) {
    const int64_t E = l.num_experts;
    std::vector<std::vector<double>> m;
    std::vector<std::string> rows, cols;
    for (int64_t d = 0; d < D && (d + 1) * E <= static_cast<int64_t>(l.domain_expert.size()); ++d) {
      m.push_back(normalized(std::vector<double>(l.domain_expert.begin() + d * E, l.domain_expert.begin() + (d + 1) * E)));
      rows.push_back(r.domains[d]);
    }
    for (int64_t e = 0; e < E; ++e) cols.push_back(std::to_string(e));
    if (m.empty()) continue;
    h << "<div class=\"card\">"
      << io::svg_heatmap(m, {.title = "domain x expert, " + l.path, .x_label = "expert", .y_label = "domain",
                             .row_labels = rows, .col_labels = cols, .vmin = 0.0, .vmax = 1.0})
      << "</div>\n";
  }
  h << "</div>\n</section>\n";

  if (r.samples.empty()) return h.str();
  h << "<section id=\"lm-samples\">\n<h2>Sample texts coloured by expert</h2>\n<p>The first " << html_escape(r.set_name)
    << " document of each domain, each piece on the colour of its top expert in each MoE layer (hover for the "
       "expert; grey = dropped). Legend:";
  int64_t max_e = 0;
  for (const LayerSpecialization& l : r.layers) max_e = std::max(max_e, l.num_experts);
  for (int64_t e = 0; e < max_e; ++e)
    h << " <span style=\"background:" << expert_colour(e) << ";padding:0 4px\">" << e << "</span>";
  h << "</p>\n";
  for (const RoutedSample& s : r.samples) {
    h << "<h3>" << html_escape(s.domain) << "</h3>\n";
    for (size_t l = 0; l < s.experts.size(); ++l) {
      h << "<p class=\"sub\">" << html_escape(l < r.layer_paths.size() ? r.layer_paths[l] : std::to_string(l))
        << "</p>\n<pre style=\"white-space:pre-wrap;line-height:1.6\">";
      for (size_t i = 0; i < s.pieces.size(); ++i) {
        const int64_t e = i < s.experts[l].size() ? s.experts[l][i] : -1;
        h << "<span title=\"expert " << e << "\" style=\"background:" << expert_colour(e) << "\">"
          << html_escape(s.pieces[i]) << "</span>";
      }
      h << "</pre>\n";
    }
  }
  h << "</section>\n";
  return h.str();
}

void write_lm_report(const std::filesystem::path& run_dir, const LmReport& r) {
  namespace fs = std::filesystem;
  fs::create_directories(run_dir / "lm");
  std::ostringstream csv;
  csv << "domain,tokens,bytes,nats,bits_per_byte\n";
  for (int64_t d = 0; d < r.bpb.num_domains(); ++d)
    csv << (d < static_cast<int64_t>(r.domains.size()) ? r.domains[d] : std::to_string(d)) << "," << r.bpb.tokens(d)
        << "," << r.bpb.bytes(d) << "," << fixed(r.bpb.nats(d), 6) << "," << fixed(r.bpb.bits_per_byte(d), 6) << "\n";
  csv << "all," << r.bpb.total_tokens() << "," << r.bpb.total_bytes() << "," << fixed(r.bpb.total_nats(), 6) << ","
      << fixed(r.bpb.bits_per_byte(), 6) << "\n";
  io::write_file_atomic((run_dir / "lm" / ("bpb_" + r.set_name + ".csv")).string(), csv.str());
  if (!r.layers.empty()) {
    fs::create_directories(run_dir / "routing");
    std::ostringstream c;
    c << "layer,same_pairs,pairs,same_expert_rate,chance_rate,domain_mi_bits,code_prose_tv,code_prose_mi_bits\n";
    for (const LayerSpecialization& l : r.layers) {
      const CodeProseSplit cp = code_prose_split(l, r.domains);
      const int64_t rows = l.num_experts > 0 ? static_cast<int64_t>(l.domain_expert.size()) / l.num_experts : 0;
      c << l.path << "," << fixed(l.same_pairs, 0) << "," << fixed(l.pairs, 0) << "," << fixed(l.same_rate(), 6) << ","
        << fixed(l.chance_same_rate(), 6) << ","
        << fixed(moe::mutual_information_bits(l.domain_expert, rows, l.num_experts), 6) << ","
        << (cp.valid ? fixed(cp.total_variation, 6) : "") << "," << (cp.valid ? fixed(cp.mi_bits, 6) : "") << "\n";
    }
    io::write_file_atomic((run_dir / "routing" / "consecutive_same_expert.csv").string(), c.str());
  }
  fs::create_directories(run_dir / "report" / "sections");
  io::write_file_atomic((run_dir / "report" / "sections" / "lm.html").string(), lm_report_html(r));
}

}  // namespace moelab::experiments
