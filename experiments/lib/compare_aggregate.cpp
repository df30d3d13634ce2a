#include "experiments/lib/compare_aggregate.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"
#include "core/io/config.h"
#include "core/util/check.h"

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace moelab::experiments {

namespace {

struct LoadedRun {
  json summary;
  std::map<std::string, std::string> config;  // key -> TOML value text
  std::map<std::string, std::string> strings;  // key -> string value (string keys only)
  std::vector<std::string> key_order;
  bool completed = false;
};

LoadedRun load_run(const fs::path& dir) {
  LoadedRun r;
  const fs::path summary = dir / "summary.json";
  try {
    r.summary = json::parse(io::read_file_bytes(summary.string()));
  } catch (const json::exception& e) {
    MOELAB_FAIL(summary.string() << ": not valid JSON: " << e.what());
  }
  r.completed = r.summary.value("status", std::string()) == "completed";
  if (fs::exists(dir / "config.toml")) {
    io::Config c = io::Config::from_file((dir / "config.toml").string());
    for (const auto& k : c.keys()) {
      r.config[k] = c.value_text(k);
      r.key_order.push_back(k);
      try {
        r.strings[k] = c.get_string(k);
      } catch (const std::exception&) {
        // not a string: only its TOML text is kept
      }
    }
  }
  return r;
}

// A run's value for the task key: the config's string (or value text), else summary.json's field.
std::string task_of(const LoadedRun& r, const std::string& key) {
  if (key.empty()) return "";
  if (auto it = r.strings.find(key); it != r.strings.end()) return it->second;
  if (auto it = r.config.find(key); it != r.config.end()) return it->second;
  if (r.summary.contains(key)) {
    const json& v = r.summary[key];
    return v.is_string() ? v.get<std::string>() : v.dump();
  }
  return "(unset)";
}

bool has_key(const LoadedRun& r, const std::string& key) {
  return r.config.count(key) || (r.summary.contains(key) && !r.summary[key].is_null());
}

bool excluded_key(const std::string& k, const std::string& task_key) {
  return k == "seed" || k == "name" || k.rfind("notes.", 0) == 0 || k == task_key;
}

double metric_of(const LoadedRun& r, const std::string& m) {
  const json& s = r.summary;
  return s.contains(m) && s[m].is_number() ? s[m].get<double>() : NAN;
}

// summary.json's metrics["<metric>/<task>"] (what a multi-game run logs per game), NaN when absent.
double per_task_metric(const LoadedRun& r, const std::string& metric, const std::string& task) {
  if (!r.summary.contains("metrics")) return NAN;
  const json& m = r.summary["metrics"];
  const std::string key = metric + "/" + task;
  return m.contains(key) && m[key].is_number() ? m[key].get<double>() : NAN;
}

// The tasks a multi-task run reports: the suffixes of its metrics "<headline metric>/<task>".
std::vector<std::string> per_task_suffixes(const LoadedRun& r, const std::vector<std::string>& metrics) {
  std::vector<std::string> tasks;
  if (!r.summary.contains("metrics") || !r.summary["metrics"].is_object()) return tasks;
  for (const auto& [key, value] : r.summary["metrics"].items())
    for (const auto& m : metrics)
      if (key.size() > m.size() + 1 && key.compare(0, m.size() + 1, m + "/") == 0) {
        std::string task = key.substr(m.size() + 1);
        if (task.find('/') == std::string::npos && std::find(tasks.begin(), tasks.end(), task) == tasks.end())
          tasks.push_back(task);
      }
  return tasks;
}

std::string sig4(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string num9(double v) {
  if (!std::isfinite(v)) return "";
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

ordered_json interval_json(const Interval& v, bool intervals) {
  ordered_json j;
  j["point"] = std::isfinite(v.point) ? ordered_json(v.point) : ordered_json();
  j["low"] = intervals && std::isfinite(v.low) ? ordered_json(v.low) : ordered_json();
  j["high"] = intervals && std::isfinite(v.high) ? ordered_json(v.high) : ordered_json();
  return j;
}

constexpr Interval kNoInterval{NAN, NAN, NAN};

}  // namespace

AggregateTable aggregate_runs(const std::vector<fs::path>& run_dirs, const AggregateOptions& options) {
  MOELAB_CHECK(!run_dirs.empty(), "no run directories (with summary.json) to aggregate");
  MOELAB_CHECK(options.min_runs >= 1, "min_runs " << options.min_runs << " must be >= 1");
  std::vector<LoadedRun> runs;
  for (const auto& d : run_dirs) runs.push_back(load_run(d));

  AggregateTable t;
  t.options = options;
  t.stratify_by = options.stratify_by;
  if (t.stratify_by.empty())
    for (const auto& k : kDefaultStratifyKeys)
      if (std::any_of(runs.begin(), runs.end(), [&](const LoadedRun& r) { return has_key(r, k); })) {
        t.stratify_by = k;
        break;
      }

  // Group keys: config keys whose values differ (missing counts as a value), as in compare_runs.
  std::vector<std::string> all_keys;
  std::set<std::string> seen;
  for (const auto& r : runs)
    for (const auto& k : r.key_order)
      if (seen.insert(k).second) all_keys.push_back(k);
  for (const auto& k : all_keys) {
    if (excluded_key(k, t.stratify_by)) continue;
    std::set<std::string> values;
    for (const auto& r : runs) values.insert(r.config.count(k) ? r.config.at(k) : "(unset)");
    if (values.size() > 1) t.keys.push_back(k);
  }
  std::set<std::string> mseen;
  for (const auto& r : runs)
    if (r.summary.contains("headline_metrics") && r.summary["headline_metrics"].is_array())
      for (const auto& m : r.summary["headline_metrics"])
        if (m.is_string() && mseen.insert(m.get<std::string>()).second) t.metrics.push_back(m.get<std::string>());

  // runs_of[group][task] -> completed runs.
  std::map<std::vector<std::string>, size_t> group_of;
  std::vector<std::map<std::string, std::vector<const LoadedRun*>>> runs_of;
  std::set<std::string> tseen;
  for (const auto& r : runs) {
    std::vector<std::string> kv;
    for (const auto& k : t.keys) kv.push_back(r.config.count(k) ? r.config.at(k) : "(unset)");
    auto [it, inserted] = group_of.emplace(kv, t.groups.size());
    if (inserted) {
      AggregateGroup g;
      g.key_values = kv;
      for (const auto& key : kProtocolKeys)
        if (auto p = r.strings.find(key); p != r.strings.end() && g.protocol.empty()) g.protocol = p->second;
      t.groups.push_back(g);
      runs_of.emplace_back();
    }
    for (const auto& key : kProtocolKeys)
      if (r.config.count(key)) t.any_protocol = true;
    if (!r.completed) {
      ++t.groups[it->second].incomplete;
      continue;
    }
    // A multi-task run (task value "all") counts in every task of its per-task metrics.
    std::vector<std::string> tasks_of_run = {task_of(r, t.stratify_by)};
    if (tasks_of_run[0] == kAllTasks) tasks_of_run = per_task_suffixes(r, t.metrics);
    for (const auto& task : tasks_of_run) {
      if (tseen.insert(task).second) t.tasks.push_back(task);
      runs_of[it->second][task].push_back(&r);
    }
  }

  const BootstrapOptions& boot = options.bootstrap;
  auto scores_of = [&](size_t g, const std::string& metric, const std::string& task) {
    std::vector<double> v;
    auto it = runs_of[g].find(task);
    if (it != runs_of[g].end())
      for (const LoadedRun* r : it->second) {
        const bool multi = task_of(*r, t.stratify_by) == kAllTasks;
        if (double x = multi ? per_task_metric(*r, metric, task) : metric_of(*r, metric); std::isfinite(x)) v.push_back(x);
      }
    return v;
  };

  for (const auto& metric : t.metrics) {
    // Normalization range per task over every compared run, unless a reference is given.
    auto& ranges = t.normalization[metric];
    for (const auto& task : t.tasks) {
      if (auto ref = options.reference.find(task); ref != options.reference.end()) {
        ranges[task] = ref->second;
        continue;
      }
      double lo = INFINITY, hi = -INFINITY;
      for (size_t g = 0; g < t.groups.size(); ++g)
        for (double x : scores_of(g, metric, task)) lo = std::min(lo, x), hi = std::max(hi, x);
      if (std::isfinite(lo)) ranges[task] = {lo, hi};
    }
    auto normalized = [&](const std::string& task, std::vector<double> v) {
      auto [lo, hi] = ranges.at(task);
      for (double& x : v) x = hi > lo ? (x - lo) / (hi - lo) : 0.0;  // a task where every run scored the same: 0
      return v;
    };

    for (size_t g = 0; g < t.groups.size(); ++g) {
      TaskScores raw_all, norm_all, base_all;
      std::vector<std::string> row_tasks;
      bool base_everywhere = g > 0;
      for (const auto& task : t.tasks) {
        std::vector<double> v = scores_of(g, metric, task);
        if (v.empty()) continue;
        AggregateRow row;
        row.group = g;
        row.metric = metric;
        row.task = task;
        row.runs = row.fewest_runs = static_cast<int64_t>(v.size());
        row.intervals = row.runs >= options.min_runs;
        const TaskScores one = {v};
        row.iqm = row.intervals ? stratified_bootstrap(one, iqm_over_tasks, boot) : Interval{iqm_over_tasks(one), NAN, NAN};
        row.mean = row.intervals ? stratified_bootstrap(one, mean_over_tasks, boot) : Interval{mean_over_tasks(one), NAN, NAN};
        row.optimality_gap = kNoInterval;
        row.improvement = kNoInterval;
        std::vector<double> base = g > 0 ? scores_of(0, metric, task) : std::vector<double>{};
        if (!base.empty()) {
          const TaskScores other = {base};
          row.has_improvement = true;
          row.improvement = row.intervals && static_cast<int64_t>(base.size()) >= options.min_runs
                                ? stratified_bootstrap(one, other, probability_of_improvement, boot)
                                : Interval{probability_of_improvement(one, other), NAN, NAN};
          base_all.push_back(base);
        } else {
          base_everywhere = false;
        }
        raw_all.push_back(v);
        norm_all.push_back(normalized(task, v));
        row_tasks.push_back(task);
        t.rows.push_back(row);
      }
      if (row_tasks.size() < 2) continue;
      AggregateRow all;
      all.group = g;
      all.metric = metric;
      all.task = "all";
      all.tasks = static_cast<int64_t>(row_tasks.size());
      all.fewest_runs = INT64_MAX;
      for (const auto& v : raw_all) {
        all.runs += static_cast<int64_t>(v.size());
        all.fewest_runs = std::min<int64_t>(all.fewest_runs, static_cast<int64_t>(v.size()));
      }
      all.intervals = all.fewest_runs >= options.min_runs;
      auto gap = [](const TaskScores& s) {
        std::vector<double> flat;
        for (const auto& v : s) flat.insert(flat.end(), v.begin(), v.end());
        return optimality_gap(flat, 1.0);
      };
      if (all.intervals) {
        all.iqm = stratified_bootstrap(norm_all, iqm_over_tasks, boot);
        all.mean = stratified_bootstrap(norm_all, mean_over_tasks, boot);
        all.optimality_gap = stratified_bootstrap(norm_all, gap, boot);
      } else {
        all.iqm = {iqm_over_tasks(norm_all), NAN, NAN};
        all.mean = {mean_over_tasks(norm_all), NAN, NAN};
        all.optimality_gap = {gap(norm_all), NAN, NAN};
      }
      all.improvement = kNoInterval;
      if (base_everywhere) {
        all.has_improvement = true;
        int64_t fewest_base = INT64_MAX;
        for (const auto& v : base_all) fewest_base = std::min<int64_t>(fewest_base, static_cast<int64_t>(v.size()));
        all.improvement = all.intervals && fewest_base >= options.min_runs
                              ? stratified_bootstrap(raw_all, base_all, probability_of_improvement, boot)
                              : Interval{probability_of_improvement(raw_all, base_all), NAN, NAN};
      }
      t.rows.push_back(all);
    }
  }
  return t;
}

std::string format_interval(const Interval& v, bool intervals) {
  if (!std::isfinite(v.point)) return "n/a";
  if (!intervals || !std::isfinite(v.low)) return sig4(v.point);
  return sig4(v.point) + " [" + sig4(v.low) + ", " + sig4(v.high) + "]";
}

bool has_intervals(const AggregateTable& t) {
  return std::any_of(t.rows.begin(), t.rows.end(), [](const AggregateRow& r) { return r.intervals; });
}

std::string aggregate_markdown(const AggregateTable& t) {
  std::ostringstream os;
  const auto& o = t.options;
  os << "IQM and mean with " << static_cast<int>(std::lround(o.bootstrap.confidence * 100))
     << "% stratified-bootstrap percentile intervals (" << o.bootstrap.replicates << " replicates, seed " << o.bootstrap.seed
     << "; intervals when every task has >= " << o.min_runs << " completed runs). Task key: "
     << (t.stratify_by.empty() ? "none (each group is one task)" : "`" + t.stratify_by + "`")
     << ". Rows `all`: scores normalized per task to (x - low) / (high - low), optimality gap below 1"
     << (o.reference.empty() ? " (low, high: the lowest and highest score of any compared run in the task)" : "")
     << "; P(> first) is the probability that a run of the row beats a run of the first group, averaged over tasks.\n\n|";
  for (const auto& k : t.keys) os << " " << k << " |";
  if (t.any_protocol) os << " protocol |";
  os << " metric | task | runs | IQM | mean | optimality gap | P(> first) |\n|";
  for (size_t i = 0; i < t.keys.size() + (t.any_protocol ? 1 : 0) + 7; ++i) os << "---|";
  os << "\n";
  for (const auto& r : t.rows) {
    const AggregateGroup& g = t.groups[r.group];
    os << "|";
    for (const auto& v : g.key_values) os << " " << v << " |";
    if (t.any_protocol) os << " " << (g.protocol.empty() ? "(unset)" : g.protocol) << " |";
    os << " " << r.metric << " | " << r.task << " | " << r.runs;
    if (r.task == "all") os << " (" << r.tasks << " tasks)";
    if (!r.intervals) os << " (< " << t.options.min_runs << " in a task)";
    os << " | " << format_interval(r.iqm, r.intervals) << " | " << format_interval(r.mean, r.intervals) << " | "
       << (r.task == "all" ? format_interval(r.optimality_gap, r.intervals) : "") << " | "
       << (r.has_improvement ? format_interval(r.improvement, std::isfinite(r.improvement.low)) : "") << " |\n";
  }
  return os.str();
}

std::string aggregate_csv(const AggregateTable& t) {
  std::ostringstream os;
  for (const auto& k : t.keys) os << csv_field(k) << ",";
  os << "protocol,metric,task,tasks,runs,fewest_runs,iqm,iqm_low,iqm_high,mean,mean_low,mean_high,"
        "optimality_gap,optimality_gap_low,optimality_gap_high,p_improvement,p_improvement_low,p_improvement_high\n";
  for (const auto& r : t.rows) {
    const AggregateGroup& g = t.groups[r.group];
    for (const auto& v : g.key_values) os << csv_field(v) << ",";
    os << csv_field(g.protocol) << "," << csv_field(r.metric) << "," << csv_field(r.task) << "," << r.tasks << "," << r.runs
       << "," << r.fewest_runs;
    for (const Interval* v : {&r.iqm, &r.mean, &r.optimality_gap, &r.improvement})
      os << "," << num9(v->point) << "," << num9(v->low) << "," << num9(v->high);
    os << "\n";
  }
  return os.str();
}

std::string aggregate_json(const AggregateTable& t) {
  ordered_json j;
  const auto& o = t.options;
  j["stratify_by"] = t.stratify_by;
  j["bootstrap"] = {{"replicates", o.bootstrap.replicates}, {"confidence", o.bootstrap.confidence}, {"seed", o.bootstrap.seed},
                    {"min_runs", o.min_runs}};
  j["keys"] = t.keys;
  j["tasks"] = t.tasks;
  ordered_json norm = ordered_json::object();
  for (const auto& [metric, ranges] : t.normalization)
    for (const auto& [task, range] : ranges) norm[metric][task] = {range.first, range.second};
  j["normalization"] = norm;
  j["normalization_source"] = o.reference.empty() ? "compared runs" : "reference (compared runs for tasks without one)";
  ordered_json rows = ordered_json::array();
  for (const auto& r : t.rows) {
    const AggregateGroup& g = t.groups[r.group];
    ordered_json row;
    ordered_json keys = ordered_json::object();
    for (size_t i = 0; i < t.keys.size(); ++i) keys[t.keys[i]] = g.key_values[i];
    row["keys"] = keys;
    row["protocol"] = g.protocol.empty() ? ordered_json() : ordered_json(g.protocol);
    row["metric"] = r.metric;
    row["task"] = r.task;
    row["tasks"] = r.tasks;
    row["runs"] = r.runs;
    row["fewest_runs"] = r.fewest_runs;
    row["incomplete_in_group"] = g.incomplete;
    row["iqm"] = interval_json(r.iqm, r.intervals);
    row["mean"] = interval_json(r.mean, r.intervals);
    if (r.task == "all") row["optimality_gap"] = interval_json(r.optimality_gap, r.intervals);
    if (r.has_improvement) row["p_improvement_over_first"] = interval_json(r.improvement, std::isfinite(r.improvement.low));
    rows.push_back(row);
  }
  j["rows"] = rows;
  return j.dump(2) + "\n";
}

void write_aggregate_files(const AggregateTable& t, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  io::write_file_atomic((out_dir / "aggregate.md").string(), aggregate_markdown(t));
  io::write_file_atomic((out_dir / "aggregate.csv").string(), aggregate_csv(t));
  io::write_file_atomic((out_dir / "aggregate.json").string(), aggregate_json(t));
}

}  // namespace moelab::experiments
