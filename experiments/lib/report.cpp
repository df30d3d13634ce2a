#include "experiments/lib/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/csv.h"
#include "core/io/metrics.h"
#include "core/io/svg.h"
#include "core/io/text_util.h"
#include "core/util/check.h"
#include "core/moe/routing_stats.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace moelab::experiments {

namespace {

const char* kStyle = R"(
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 15px; margin: 12px 0 4px; }
.sub { color: #666; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #e3e3e3; border-radius: 6px; padding: 6px; background: #fcfcfc; }
table.kv { border-collapse: collapse; font-size: 13px; }
table.kv td, table.kv th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
table.kv th { background: #f3f3f3; }
pre { background: #f6f6f6; border: 1px solid #e3e3e3; padding: 8px; font-size: 12px; overflow-x: auto; }
.status-completed { color: #207020; font-weight: bold; } .status-failed, .status-interrupted { color: #b02020; font-weight: bold; }
)";

std::string esc(std::string_view s) { return io::html_escape(s); }

std::string fmt(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string json_value_text(const json& v) {
  if (v.is_number()) return fmt(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "n/a";
  return v.dump();
}

std::string read_or_empty(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return "";
  return io::read_file_bytes(p.string());
}

struct Series {
  std::vector<double> x, y;
};
Series series_of(const std::vector<json>& records, const std::string& name, const std::string& sub = "") {
  Series s;
  for (const auto& [step, v] : io::metric_series(records, name, sub)) {
    s.x.push_back(static_cast<double>(step));
    s.y.push_back(v);
  }
  return s;
}

bool positive(const Series& s) {
  for (double v : s.y)
    if (std::isfinite(v) && v <= 0) return false;
  return !s.y.empty();
}

// Module paths in model order: digit runs compare as numbers ("blocks.2.moe" before "blocks.10.moe").
bool path_before(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      const long long x = std::stoll(a.substr(i, ei - i)), y = std::stoll(b.substr(j, ej - j));
      if (x != y) return x < y;
      i = ei, j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string chart_card(const std::string& svg) { return "<div class=\"card\">" + svg + "</div>\n"; }


}  // namespace

std::vector<std::string> scalar_names(const std::vector<json>& records) {
  std::set<std::string> names;
  for (const auto& r : records)
    for (const auto& [k, v] : r.items())
      if (k != "step" && k != "time" && (v.is_number() || v.is_null())) names.insert(k);
  return {names.begin(), names.end()};
}

std::vector<std::pair<std::string, std::vector<std::string>>> per_layer_names(const std::vector<json>& records) {
  std::map<std::string, std::set<std::string>> found;
  for (const auto& r : records)
    for (const auto& [k, v] : r.items()) {
      if (!v.is_object() || v.empty()) continue;
      bool numeric = true;
      for (const auto& [sub, x] : v.items())
        if (!(x.is_number() || x.is_null())) numeric = false;
      if (numeric)
        for (const auto& [sub, x] : v.items()) found[k].insert(sub);
    }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (auto& [name, subs] : found) {
    std::vector<std::string> layers(subs.begin(), subs.end());
    std::sort(layers.begin(), layers.end(), path_before);
    out.emplace_back(name, layers);
  }
  return out;
}

fs::path write_report(const fs::path& run_dir) {
  fs::path metrics_path = run_dir / "metrics.jsonl";
  MOELAB_CHECK(fs::exists(metrics_path), run_dir.string() << " has no metrics.jsonl: is it a moelab run directory?");
  std::vector<json> records = io::read_metrics(metrics_path.string()).records;
  json summary = json::object();
  if (std::string text = read_or_empty(run_dir / "summary.json"); !text.empty()) summary = json::parse(text);
  std::string config_text = read_or_empty(run_dir / "config.toml");
  fs::path out_dir = run_dir / "report";
  fs::create_directories(out_dir);

  std::ostringstream html;
  std::string title = summary.value("name", run_dir.filename().string());
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>moelab report: " << esc(title)
       << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  html << "<h1>" << esc(title) << "</h1>\n<div class=\"sub\">task " << esc(summary.value("task", std::string("?")))
       << " &middot; " << esc(run_dir.string()) << "</div>\n";

  // ---- summary ----
  html << "<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"kv\">\n";
  std::string status = summary.value("status", std::string("unknown"));
  html << "<tr><th>status</th><td class=\"status-" << esc(status) << "\">" << esc(status) << "</td></tr>\n";
  if (summary.contains("error")) html << "<tr><th>error</th><td>" << esc(summary["error"].get<std::string>()) << "</td></tr>\n";
  for (const char* key : {"steps", "total_steps", "final_train_loss", "seed", "threads", "wall_time_s"})
    if (summary.contains(key)) html << "<tr><th>" << key << "</th><td>" << esc(json_value_text(summary[key])) << "</td></tr>\n";
  if (summary.contains("headline_metrics"))
    for (const auto& name : summary["headline_metrics"]) {
      std::string n = name.get<std::string>();
      html << "<tr><th>" << esc(n) << "</th><td><b>" << esc(json_value_text(summary.value(n, json()))) << "</b></td></tr>\n";
    }
  if (summary.contains("label_mi_bits"))
    for (const auto& [layer, v] : summary["label_mi_bits"].items())
      html << "<tr><th>routing MI " << esc(layer) << "</th><td>" << esc(json_value_text(v)) << " bits</td></tr>\n";
  html << "</table>\n</section>\n";

  // ---- curves: every plain scalar; train/loss with val/loss on one chart ----
  std::vector<std::string> scalars = scalar_names(records);
  html << "<section id=\"curves\">\n<h2>Losses and metrics</h2>\n<div class=\"grid\">\n";
  {
    std::vector<io::ChartSeries> loss;
    for (const char* name : {"train/loss", "val/loss"}) {
      Series s = series_of(records, name);
      if (!s.x.empty()) loss.push_back({name, s.x, s.y});
    }
    bool logy = !loss.empty();
    for (const auto& s : loss) logy = logy && positive({s.x, s.y});
    if (!loss.empty())
      html << chart_card(io::svg_line_chart(loss, {.title = "loss", .x_label = "step", .y_label = "loss", .width = 560,
                                                   .height = 320, .log_y = logy}));
    for (const auto& name : scalars) {
      if (name == "train/loss" || name == "val/loss") continue;
      Series s = series_of(records, name);
      if (s.x.empty()) continue;
      html << chart_card(io::svg_line_chart({{name, s.x, s.y}}, {.title = name, .x_label = "step", .width = 420, .height = 260}));
    }
  }
  html << "</div>\n</section>\n";

  // ---- MoE statistics over time ----
  auto layered = per_layer_names(records);
  html << "<section id=\"moe\">\n<h2>Mixture-of-Experts statistics</h2>\n<div class=\"grid\">\n";
  for (const auto& [name, layers] : layered) {
    std::vector<io::ChartSeries> lines;
    for (const auto& layer : layers) {
      Series s = series_of(records, name, layer);
      if (!s.x.empty()) lines.push_back({layer, s.x, s.y});
    }
    if (!lines.empty())
      html << chart_card(io::svg_line_chart(lines, {.title = name, .x_label = "step", .width = 420, .height = 260}));
  }
  html << "</div>\n";

  // Expert load over time: one heatmap per layer (experts x logged steps, at most 30 columns so that
  // the cells and step labels stay readable; the CSV has every step).
  std::map<std::string, std::vector<std::pair<int64_t, std::vector<double>>>> loads;  // layer -> (step, fractions)
  for (const auto& r : records) {
    auto it = r.find("moe/load");
    if (it == r.end() || !it->is_object()) continue;
    for (const auto& [layer, v] : it->items())
      if (v.is_array()) loads[layer].emplace_back(r["step"].get<int64_t>(), v.get<std::vector<double>>());
  }
  std::vector<std::string> load_layers;
  for (const auto& [layer, _] : loads) load_layers.push_back(layer);
  std::sort(load_layers.begin(), load_layers.end(), path_before);
  html << "<div id=\"expert-load\">\n<h3>Expert load over time (fraction of assignments)</h3>\n<div class=\"grid\">\n";
  for (const auto& layer : load_layers) {
    const auto& rows = loads[layer];
    size_t experts = 0;
    for (const auto& [step, f] : rows) experts = std::max(experts, f.size());
    size_t stride = std::max<size_t>(1, (rows.size() + 29) / 30);
    std::vector<std::vector<double>> matrix(experts);
    std::vector<std::string> cols, row_labels;
    for (size_t i = 0; i < rows.size(); i += stride) {
      cols.push_back(std::to_string(rows[i].first));
      for (size_t e = 0; e < experts; ++e) matrix[e].push_back(e < rows[i].second.size() ? rows[i].second[e] : 0.0);
    }
    for (size_t e = 0; e < experts; ++e) row_labels.push_back("expert " + std::to_string(e));
    html << chart_card(io::svg_heatmap(matrix, {.title = "expert load, " + layer, .x_label = "step",
                                                .y_label = "expert", .row_labels = row_labels, .col_labels = cols,
                                                .cell = 18, .vmin = 0.0, .annotate = 0}));
    std::vector<std::string> header{"step"};
    for (size_t e = 0; e < experts; ++e) header.push_back("expert_" + std::to_string(e));
    io::CsvTable table(header);
    for (const auto& [step, f] : rows) {
      std::vector<double> values{static_cast<double>(step)};
      for (size_t e = 0; e < experts; ++e) values.push_back(e < f.size() ? f[e] : 0.0);
      table.row(values);
    }
    table.write((out_dir / ("expert_load_" + layer + ".csv")).string());
  }
  if (load_layers.empty()) html << "<p class=\"sub\">No MoE layer reported routing.</p>\n";
  html << "</div>\n</div>\n</section>\n";

  // ---- routing: labels x experts of the last evaluation ----
  const json* last_matrices = nullptr;
  int64_t matrices_step = -1;
  for (const auto& r : records)
    if (auto it = r.find("val/labels_experts"); it != r.end() && it->is_object()) {
      last_matrices = &*it;
      matrices_step = r["step"].get<int64_t>();
    }
  std::vector<std::string> labels;
  if (summary.contains("routing_labels")) labels = summary["routing_labels"].get<std::vector<std::string>>();
  std::string label_kind = summary.value("label_kind", std::string("label"));
  html << "<section id=\"routing\">\n<h2>Routing by " << esc(label_kind) << "</h2>\n";
  if (last_matrices) {
    html << "<p class=\"sub\">Evaluation at step " << matrices_step << ": share of each " << esc(label_kind)
         << "'s tokens sent to each expert (rows sum to 1). The mutual information I(" << esc(label_kind)
         << "; expert) measures specialization: 0 bits when routing ignores the " << esc(label_kind)
         << ", log2(#" << esc(label_kind) << "s) at most.</p>\n<div class=\"grid\">\n";
    std::vector<std::pair<std::string, json>> sorted;
    for (const auto& [k, v] : last_matrices->items()) sorted.emplace_back(k, v);
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return path_before(a.first, b.first); });
    for (const auto& [layer, m] : sorted) {
      auto counts = m.get<std::vector<std::vector<double>>>();
      int64_t rows = static_cast<int64_t>(counts.size()), cols = rows ? static_cast<int64_t>(counts[0].size()) : 0;
      std::vector<double> flat;
      for (const auto& row : counts) flat.insert(flat.end(), row.begin(), row.end());
      double mi = moe::mutual_information_bits(flat, rows, cols);
      double h = moe::label_entropy_bits(flat, rows, cols);
      std::vector<std::vector<double>> share = counts;
      for (auto& row : share) {
        double total = 0;
        for (double v : row) total += v;
        for (double& v : row) v = total > 0 ? v / total : 0;
      }
      std::vector<std::string> row_labels, col_labels;
      for (int64_t i = 0; i < rows; ++i) row_labels.push_back(i < static_cast<int64_t>(labels.size()) ? labels[i] : std::to_string(i));
      for (int64_t e = 0; e < cols; ++e) col_labels.push_back(std::to_string(e));
      html << chart_card(io::svg_heatmap(share, {.title = layer + ": MI " + fmt(mi) + " of " + fmt(h) + " bits",
                                                 .x_label = "expert", .y_label = label_kind, .row_labels = row_labels,
                                                 .col_labels = col_labels, .vmin = 0.0, .vmax = 1.0}));
      io::write_file_atomic((out_dir / ("labels_experts_" + layer + ".csv")).string(),
                            moe::labels_experts_csv(flat, rows, cols, row_labels));
    }
    html << "</div>\n";
  } else {
    html << "<p class=\"sub\">No labelled routing was recorded.</p>\n";
  }
  html << "</section>\n";

  // ---- task fragments: report/sections/*.html, in name order, pasted as they are ----
  if (fs::is_directory(out_dir / "sections")) {
    std::vector<fs::path> fragments;
    for (const auto& e : fs::directory_iterator(out_dir / "sections"))
      if (e.is_regular_file() && e.path().extension() == ".html") fragments.push_back(e.path());
    std::sort(fragments.begin(), fragments.end());
    for (const auto& f : fragments) html << io::read_file_bytes(f.string()) << "\n";
  }

  // ---- config ----
  html << "<section id=\"config\">\n<h2>Config</h2>\n<pre>" << esc(config_text) << "</pre>\n</section>\n";
  html << "</body>\n</html>\n";

  // scalars.csv: one row per logged step (training and evaluation records of a step merged), one
  // column per plain scalar.
  std::map<int64_t, std::map<std::string, double>> by_step;
  for (const auto& r : records)
    for (const auto& n : scalars)
      if (auto it = r.find(n); it != r.end() && (it->is_number() || it->is_null()))
        by_step[r["step"].get<int64_t>()][n] = it->is_number() ? it->get<double>() : NAN;
  std::vector<std::string> header{"step"};
  header.insert(header.end(), scalars.begin(), scalars.end());
  io::CsvTable table(header);
  for (const auto& [step, values] : by_step) {
    std::vector<std::string> fields{std::to_string(step)};
    for (const auto& n : scalars) {
      auto it = values.find(n);
      fields.push_back(it != values.end() && std::isfinite(it->second) ? io::csv_number(it->second) : "");
    }
    table.row(fields);
  }
  table.write((out_dir / "scalars.csv").string());
  fs::path index = out_dir / "index.html";
  io::write_file_atomic(index.string(), html.str());
  return index;
}

}  // namespace moelab::experiments
