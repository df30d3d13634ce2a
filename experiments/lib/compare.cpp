#include "experiments/lib/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"
#include "core/io/config.h"
#include "core/io/svg.h"
#include "core/io/text_util.h"
#include "core/util/check.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace moelab::experiments {

namespace {

struct RunInfo {
  fs::path dir;
  json summary;
  std::map<std::string, std::string> config;  // key -> TOML value text
  std::vector<std::string> key_order;
};

bool excluded_key(const std::string& k) { return k == "seed" || k == "name" || k.rfind("notes.", 0) == 0; }

std::string sig4(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string format_mean_std(double mean, double std, int64_t count) {
  if (count == 0 || !std::isfinite(mean)) return "n/a";
  if (count < 2) return sig4(mean);
  return sig4(mean) + " ± " + sig4(std);
}

std::vector<fs::path> find_run_dirs(const std::vector<fs::path>& paths) {
  std::set<fs::path> found;
  for (const auto& p : paths) {
    MOELAB_CHECK(fs::is_directory(p), p.string() << " is not a directory");
    if (fs::exists(p / "summary.json")) {
      found.insert(fs::weakly_canonical(p));
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(p); it != fs::recursive_directory_iterator(); ++it) {
      if (!it->is_directory()) continue;
      if (it->path().filename() == "ckpt" || it->path().filename() == "report") {
        it.disable_recursion_pending();
        continue;
      }
      if (fs::exists(it->path() / "summary.json")) {
        found.insert(fs::weakly_canonical(it->path()));
        it.disable_recursion_pending();
      }
    }
  }
  return {found.begin(), found.end()};
}

CompareTable compare_runs(const std::vector<fs::path>& run_dirs) {
  MOELAB_CHECK(!run_dirs.empty(), "no run directories (with summary.json) to compare");
  std::vector<RunInfo> runs;
  for (const auto& dir : run_dirs) {
    RunInfo r;
    r.dir = dir;
    r.summary = json::parse(io::read_file_bytes((dir / "summary.json").string()));
    if (fs::exists(dir / "config.toml")) {
      io::Config c = io::Config::from_file((dir / "config.toml").string());
      for (const auto& k : c.keys()) {
        r.config[k] = c.value_text(k);
        r.key_order.push_back(k);
      }
    }
    runs.push_back(std::move(r));
  }
  CompareTable t;
  t.run_dirs = run_dirs;
  // Keys whose values differ between runs (missing counts as a value).
  std::vector<std::string> all_keys;
  std::set<std::string> seen;
  for (const auto& r : runs)
    for (const auto& k : r.key_order)
      if (seen.insert(k).second) all_keys.push_back(k);
  for (const auto& k : all_keys) {
    if (excluded_key(k)) continue;
    std::set<std::string> values;
    for (const auto& r : runs) values.insert(r.config.count(k) ? r.config.at(k) : "(unset)");
    // The protocol preset is shown even when every run shares it: results compare only within one.
    if (values.size() > 1 || k == "env.protocol" || k == "rl.protocol") t.keys.push_back(k);
  }
  // Metrics: headline metrics in first-seen order, final_train_loss, then routing MI per layer.
  std::set<std::string> mseen;
  for (const auto& r : runs)
    if (r.summary.contains("headline_metrics"))
      for (const auto& m : r.summary["headline_metrics"])
        if (mseen.insert(m.get<std::string>()).second) t.metrics.push_back(m.get<std::string>());
  t.metrics.push_back("final_train_loss");
  std::set<std::string> layers;
  for (const auto& r : runs)
    if (r.summary.contains("label_mi_bits"))
      for (const auto& [layer, v] : r.summary["label_mi_bits"].items()) layers.insert(layer);
  for (const auto& l : layers) t.metrics.push_back("label_mi_bits/" + l);

  auto metric_of = [](const json& s, const std::string& m) -> double {
    const json* v = nullptr;
    if (m.rfind("label_mi_bits/", 0) == 0) {
      std::string layer = m.substr(14);
      if (s.contains("label_mi_bits") && s["label_mi_bits"].contains(layer)) v = &s["label_mi_bits"][layer];
    } else if (s.contains(m)) {
      v = &s[m];
    }
    return v && v->is_number() ? v->get<double>() : NAN;
  };

  std::map<std::vector<std::string>, size_t> group_of;
  std::vector<std::vector<const RunInfo*>> groups;
  for (const auto& r : runs) {
    std::vector<std::string> kv;
    for (const auto& k : t.keys) kv.push_back(r.config.count(k) ? r.config.at(k) : "(unset)");
    auto [it, inserted] = group_of.emplace(kv, groups.size());
    if (inserted) {
      groups.emplace_back();
      CompareRow row;
      row.key_values = kv;
      t.rows.push_back(row);
    }
    groups[it->second].push_back(&r);
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    CompareRow& row = t.rows[g];
    std::vector<const RunInfo*> done;
    for (const RunInfo* r : groups[g]) {
      if (r->summary.value("status", std::string()) == "completed") done.push_back(r);
      else ++row.incomplete;
    }
    row.runs = static_cast<int64_t>(done.size());
    for (const auto& m : t.metrics) {
      std::vector<double> v;
      for (const RunInfo* r : done)
        if (double x = metric_of(r->summary, m); std::isfinite(x)) v.push_back(x);
      double mean = NAN, sd = NAN;
      if (!v.empty()) {
        mean = 0;
        for (double x : v) mean += x;
        mean /= static_cast<double>(v.size());
        sd = 0;
        if (v.size() > 1) {
          for (double x : v) sd += (x - mean) * (x - mean);
          sd = std::sqrt(sd / static_cast<double>(v.size() - 1));
        }
      }
      row.mean.push_back(mean);
      row.std.push_back(sd);
      row.count.push_back(static_cast<int64_t>(v.size()));
    }
  }
  return t;
}

std::string compare_markdown(const CompareTable& t) {
  std::ostringstream os;
  os << "|";
  for (const auto& k : t.keys) os << " " << k << " |";
  os << " runs |";
  for (const auto& m : t.metrics) os << " " << m << " |";
  os << "\n|";
  for (size_t i = 0; i < t.keys.size() + 1 + t.metrics.size(); ++i) os << "---|";
  os << "\n";
  for (const auto& r : t.rows) {
    os << "|";
    for (const auto& v : r.key_values) os << " " << v << " |";
    os << " " << r.runs;
    if (r.incomplete) os << " (+" << r.incomplete << " incomplete)";
    os << " |";
    for (size_t i = 0; i < t.metrics.size(); ++i) os << " " << format_mean_std(r.mean[i], r.std[i], r.count[i]) << " |";
    os << "\n";
  }
  return os.str();
}

std::string compare_csv(const CompareTable& t) {
  std::ostringstream os;
  for (const auto& k : t.keys) os << csv_field(k) << ",";
  os << "runs,incomplete";
  for (const auto& m : t.metrics) os << "," << csv_field(m + " mean") << "," << csv_field(m + " std") << "," << csv_field(m + " n");
  os << "\n";
  for (const auto& r : t.rows) {
    for (const auto& v : r.key_values) os << csv_field(v) << ",";
    os << r.runs << "," << r.incomplete;
    for (size_t i = 0; i < t.metrics.size(); ++i) {
      char mean[40], sd[40];
      std::snprintf(mean, sizeof mean, "%.9g", r.mean[i]);
      std::snprintf(sd, sizeof sd, "%.9g", r.std[i]);
      os << "," << (std::isfinite(r.mean[i]) ? mean : "") << "," << (std::isfinite(r.std[i]) && r.count[i] > 1 ? sd : "")
         << "," << r.count[i];
    }
    os << "\n";
  }
  return os.str();
}

std::string compare_html(const CompareTable& t) {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>moelab compare</title>\n<style>\n"
        "body { font-family: -apple-system, \"Segoe UI\", Helvetica, Arial, sans-serif; margin: 16px 24px; color: #222; }\n"
        "table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 4px 8px; }\n"
        "th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
        "</style>\n</head>\n<body>\n<h1>Comparison of " << t.run_dirs.size() << " runs</h1>\n<table id=\"compare\">\n<tr>";
  for (const auto& k : t.keys) os << "<th>" << io::html_escape(k) << "</th>";
  os << "<th>runs</th>";
  for (const auto& m : t.metrics) os << "<th>" << io::html_escape(m) << "</th>";
  os << "</tr>\n";
  for (const auto& r : t.rows) {
    os << "<tr>";
    for (const auto& v : r.key_values) os << "<td>" << io::html_escape(v) << "</td>";
    os << "<td class=\"num\">" << r.runs << (r.incomplete ? " (+" + std::to_string(r.incomplete) + " incomplete)" : "") << "</td>";
    for (size_t i = 0; i < t.metrics.size(); ++i)
      os << "<td class=\"num\">" << io::html_escape(format_mean_std(r.mean[i], r.std[i], r.count[i])) << "</td>";
    os << "</tr>\n";
  }
  os << "</table>\n<h2>Runs</h2>\n<ul>\n";
  for (const auto& d : t.run_dirs) os << "<li>" << io::html_escape(d.string()) << "</li>\n";
  os << "</ul>\n</body>\n</html>\n";
  return os.str();
}

void write_compare_files(const CompareTable& t, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  io::write_file_atomic((out_dir / "compare.md").string(), compare_markdown(t));
  io::write_file_atomic((out_dir / "compare.csv").string(), compare_csv(t));
  io::write_file_atomic((out_dir / "compare.html").string(), compare_html(t));
}

}  // namespace moelab::experiments
