#include "experiments/lib/sweep.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/io/config.h"
#include "core/io/text_util.h"
#include "experiments/lib/run_config.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

namespace {

std::string where(const toml::node& n, const fs::path& file) {
  const auto& b = n.source().begin;
  return file.string() + ":" + std::to_string(b.line) + ":" + std::to_string(b.column);
}

[[noreturn]] void fail(const std::string& msg) { throw io::ConfigError({msg}); }

// TOML text of a scalar grid value; strings quoted.
std::string value_text(const toml::node& n, const fs::path& file) {
  if (auto* s = n.as_string()) return io::quote_string(s->get());
  if (auto* i = n.as_integer()) return std::to_string(i->get());
  if (auto* f = n.as_floating_point()) {
    std::string t = io::format_double(f->get());
    if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
    return t;
  }
  if (auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  fail(where(n, file) + ": grid values must be strings, numbers or booleans");
}

// The value as it appears in a directory name: strings without quotes.
std::string plain_text(const std::string& toml_text) {
  if (toml_text.size() >= 2 && toml_text.front() == '"') return toml_text.substr(1, toml_text.size() - 2);
  return toml_text;
}

std::string safe_dir_name(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || std::string("._=,-+").find(c) != std::string::npos) ? c : '_';
  return out;
}

void flatten_grid(const toml::table& t, const std::string& prefix, const fs::path& file,
                  std::vector<std::pair<std::string, std::vector<std::string>>>& out) {
  for (auto&& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto* sub = v.as_table()) {
      flatten_grid(*sub, key, file, out);
    } else if (auto* arr = v.as_array()) {
      if (arr->empty()) fail(where(v, file) + ": grid." + key + ": needs at least one value");
      std::vector<std::string> values;
      for (const auto& e : *arr) values.push_back(value_text(e, file));
      out.emplace_back(key, values);
    } else {
      fail(where(v, file) + ": grid." + key + ": expected a list of values, e.g. [4, 8, 16]");
    }
  }
}

}  // namespace

bool run_completed(const fs::path& run_dir) {
  fs::path s = run_dir / "summary.json";
  if (!fs::exists(s)) return false;
  try {
    std::ifstream f(s);
    nlohmann::json j = nlohmann::json::parse(f);
    return j.value("status", std::string()) == "completed";
  } catch (const std::exception&) {
    return false;
  }
}

SweepSpec load_sweep(const fs::path& file, const fs::path& out_dir) {
  SweepSpec spec;
  spec.file = file;
  toml::table t;
  try {
    t = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    fail(file.string() + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " + std::string(e.description()));
  }
  static const std::vector<std::string> known = {"base", "name", "seeds", "overrides", "grid"};
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const auto& b = k.source().begin;
    std::string msg = file.string() + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                      ": unknown sweep key '" + key + "'";
    if (auto near = io::nearest_match(key, known)) msg += "; did you mean '" + *near + "'?";
    else msg += " (a sweep has base, name, seeds, overrides and [grid])";
    fail(msg);
  }
  const toml::node* base = t.get("base");
  if (!base || !base->is_string()) fail(file.string() + ": a sweep needs `base = \"path/to/config.toml\"` (relative to the sweep file)");
  spec.base = file.parent_path() / base->as_string()->get();
  if (!fs::exists(spec.base)) fail(where(*base, file) + ": base config " + spec.base.string() + " does not exist");
  spec.name = file.stem().string();
  if (const toml::node* n = t.get("name")) {
    if (!n->is_string()) fail(where(*n, file) + ": name: expected a string");
    spec.name = n->as_string()->get();
  }
  spec.seeds = {0};
  if (const toml::node* s = t.get("seeds")) {
    auto* arr = s->as_array();
    if (!arr || arr->empty()) fail(where(*s, file) + ": seeds: expected a non-empty list of integers, e.g. [0, 1, 2]");
    spec.seeds.clear();
    for (const auto& e : *arr) {
      if (!e.is_integer()) fail(where(e, file) + ": seeds: expected integers");
      spec.seeds.push_back(e.as_integer()->get());
    }
  }
  if (const toml::node* o = t.get("overrides")) {
    auto* arr = o->as_array();
    if (!arr) fail(where(*o, file) + ": overrides: expected a list of \"key=value\" strings");
    for (const auto& e : *arr) {
      if (!e.is_string()) fail(where(e, file) + ": overrides: expected \"key=value\" strings");
      spec.overrides.push_back(e.as_string()->get());
    }
  }
  if (const toml::node* g = t.get("grid")) {
    if (!g->is_table()) fail(where(*g, file) + ": grid: expected a table of key = [values]");
    flatten_grid(*g->as_table(), "", file, spec.grid);
    // toml++ keeps tables sorted by key; keep the order the sweep file lists them in.
    auto pos = [&](const std::string& key) {
      const toml::node* n = g->as_table();
      size_t start = 0;
      while (n && start <= key.size()) {
        size_t dot = key.find('.', start);
        n = n->as_table() ? n->as_table()->get(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start)) : nullptr;
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      return n ? std::make_pair(n->source().begin.line, n->source().begin.column) : std::make_pair(0u, 0u);
    };
    std::stable_sort(spec.grid.begin(), spec.grid.end(), [&](const auto& a, const auto& b) { return pos(a.first) < pos(b.first); });
  }
  spec.out_dir = out_dir.empty() ? fs::path("runs") / "sweeps" / spec.name : out_dir;

  // Short names for directory names: the last key component unless two keys share it.
  std::map<std::string, int> last_count;
  auto last_of = [](const std::string& k) { return k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1); };
  for (const auto& [k, _] : spec.grid) ++last_count[last_of(k)];
  // Expand the grid: an odometer over the value lists, the last key fastest.
  std::vector<size_t> idx(spec.grid.size(), 0);
  while (true) {
    std::vector<std::string> point_overrides;
    std::string point;
    for (size_t i = 0; i < spec.grid.size(); ++i) {
      const auto& [key, values] = spec.grid[i];
      point_overrides.push_back(key + "=" + values[idx[i]]);
      std::string shown = last_count[last_of(key)] > 1 ? key : last_of(key);
      point += (point.empty() ? "" : ",") + shown + "=" + plain_text(values[idx[i]]);
    }
    if (point.empty()) point = "base";
    point = safe_dir_name(point);
    for (int64_t seed : spec.seeds) {
      SweepRun r;
      r.overrides = spec.overrides;
      r.overrides.insert(r.overrides.end(), point_overrides.begin(), point_overrides.end());
      r.overrides.push_back("name=" + spec.name);
      r.overrides.push_back("seed=" + std::to_string(seed));
      r.point = point;
      r.seed = seed;
      r.run_dir = spec.out_dir / point / ("seed_" + std::to_string(seed));
      spec.runs.push_back(std::move(r));
    }
    if (spec.grid.empty()) break;
    int64_t i = static_cast<int64_t>(spec.grid.size()) - 1;
    while (i >= 0 && ++idx[i] == spec.grid[i].second.size()) idx[i--] = 0;
    if (i < 0) break;
  }
  // Every run's config must be valid before anything starts.
  std::set<std::string> checked;
  for (const auto& r : spec.runs) {
    try {
      load_run_config(spec.base.string(), r.overrides);
    } catch (const io::ConfigError& e) {
      fail("sweep point " + r.point + " (seed " + std::to_string(r.seed) + "): " + e.what());
    }
  }
  return spec;
}

namespace {

pid_t spawn(const fs::path& binary, const std::vector<std::string>& args, const fs::path& output, int omp_threads) {
  fs::create_directories(output.parent_path());
  pid_t pid = ::fork();
  MOELAB_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    if (omp_threads > 0) ::setenv("OMP_NUM_THREADS", std::to_string(omp_threads).c_str(), 1);
    std::vector<char*> argv;
    std::string bin = binary.string();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

SweepResult run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  SweepResult result;
  fs::path binary = options.moelab_binary.empty() ? fs::read_symlink("/proc/self/exe") : options.moelab_binary;
  int jobs = std::max(1, options.jobs);
  int omp_threads = 0;
  if (jobs > 1 && !std::getenv("OMP_NUM_THREADS"))
    omp_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / jobs);

  std::vector<const SweepRun*> todo;
  for (const auto& r : spec.runs) {
    if (run_completed(r.run_dir)) {
      ++result.skipped;
      std::cout << "skip " << r.point << " seed " << r.seed << " (finished: " << r.run_dir.string() << ")\n";
    } else {
      todo.push_back(&r);
    }
  }
  std::map<pid_t, std::pair<const SweepRun*, std::chrono::steady_clock::time_point>> running;
  size_t next = 0, done = 0;
  const size_t total = todo.size();
  while (next < total || !running.empty()) {
    while (next < total && static_cast<int>(running.size()) < jobs) {
      const SweepRun* r = todo[next++];
      std::vector<std::string> args = {"run", spec.base.string()};
      args.insert(args.end(), r->overrides.begin(), r->overrides.end());
      args.insert(args.end(), {"--run-dir", r->run_dir.string(), "--progress", options.progress});
      if (fs::exists(r->run_dir / "config.toml")) args.push_back("--resume");
      pid_t pid = spawn(binary, args, r->run_dir / "stdout.txt", omp_threads);
      running[pid] = {r, std::chrono::steady_clock::now()};
      std::cout << "start " << r->point << " seed " << r->seed << " -> " << r->run_dir.string() << "\n" << std::flush;
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    auto [r, t0] = it->second;
    running.erase(it);
    ++done;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && run_completed(r->run_dir);
    if (ok) ++result.completed;
    else ++result.failed;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f s", secs);
    std::cout << "[" << done << "/" << total << "] " << (ok ? "done " : "FAILED ") << r->point << " seed " << r->seed
              << " (" << buf << ")" << (ok ? "" : "; see " + (r->run_dir / "stdout.txt").string()) << "\n" << std::flush;
  }
  return result;
}

}  // namespace moelab::experiments
