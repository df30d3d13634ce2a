#include "core/io/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/io/atomic_file.h"

namespace moelab::io {
namespace {

double system_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// JSON has no NaN or infinity: such values become null.
nlohmann::ordered_json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

struct Line {
  std::string_view text;
  size_t number;  // 1-based
  bool complete;  // ended by '\n'
};

std::vector<Line> split_lines(std::string_view bytes) {
  std::vector<Line> out;
  size_t start = 0, number = 1;
  while (start < bytes.size()) {
    size_t nl = bytes.find('\n', start);
    bool complete = nl != std::string_view::npos;
    size_t end = complete ? nl : bytes.size();
    out.push_back({bytes.substr(start, end - start), number++, complete});
    start = end + 1;
  }
  return out;
}

// Parses the lines of a metrics file; the last line may be cut short (then `truncated` is set).
std::vector<std::pair<nlohmann::json, Line>> parse_lines(const std::string& path, std::string_view bytes, bool* truncated) {
  std::vector<std::pair<nlohmann::json, Line>> out;
  const auto lines = split_lines(bytes);
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& line = lines[i];
    if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    const bool last = i + 1 == lines.size();
    if (j.is_discarded() || !j.is_object()) {
      if (last && !line.complete) {
        *truncated = true;
        break;
      }
      throw MetricsError(path + ":" + std::to_string(line.number) + ": not a JSON object: " +
                         std::string(line.text.substr(0, 80)));
    }
    if (!j.contains("step") || !j["step"].is_number_integer())
      throw MetricsError(path + ":" + std::to_string(line.number) + ": the record has no integer \"step\"");
    out.emplace_back(std::move(j), line);
  }
  return out;
}

}  // namespace

// ---- MetricsRecord ----

MetricsRecord::MetricsRecord(int64_t step) : step_(step) {}

MetricsRecord& MetricsRecord::scalar(const std::string& name, double value) {
  MOELAB_CHECK(name != "step" && name != "time", "metric name '" << name << "' is reserved");
  fields_[name] = number_or_null(value);
  mirrored_.emplace_back(name, value);
  return *this;
}

MetricsRecord& MetricsRecord::per_layer(const std::string& name,
                                        const std::vector<std::pair<std::string, double>>& values) {
  MOELAB_CHECK(name != "step" && name != "time", "metric name '" << name << "' is reserved");
  nlohmann::ordered_json obj = nlohmann::ordered_json::object();
  for (const auto& [layer, v] : values) {
    obj[layer] = number_or_null(v);
    mirrored_.emplace_back(name + "/" + layer, v);
  }
  fields_[name] = std::move(obj);
  return *this;
}

MetricsRecord& MetricsRecord::json(const std::string& name, nlohmann::ordered_json value) {
  MOELAB_CHECK(name != "step" && name != "time", "metric name '" << name << "' is reserved");
  fields_[name] = std::move(value);
  return *this;
}

// ---- MetricsWriter ----

MetricsWriter::MetricsWriter(const std::string& run_dir, MetricsWriterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = system_seconds;
  if (!options_.events.clock) options_.events.clock = options_.clock;
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  MOELAB_CHECK(!ec, "cannot create run directory " << run_dir << ": " << ec.message());
  path_ = run_dir + "/metrics.jsonl";
  const int64_t keep = options_.resume_after_step >= 0 ? options_.resume_after_step : std::numeric_limits<int64_t>::max();
  truncate_metrics_after(path_, keep);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  MOELAB_CHECK(fd_ >= 0, "cannot open " << path_ << ": " << std::strerror(errno));
  if (options_.tensorboard) events_ = std::make_unique<EventWriter>(run_dir, options_.events);
}

MetricsWriter::~MetricsWriter() {
  try {
    close();
  } catch (...) {
  }
}

void MetricsWriter::write(const MetricsRecord& record) {
  MOELAB_CHECK(fd_ >= 0, "metrics file " << path_ << " is closed");
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["step"] = record.step();
  line["time"] = options_.clock();
  for (auto it = record.fields().begin(); it != record.fields().end(); ++it) line[it.key()] = it.value();
  // One write() per line: with O_APPEND the line lands whole or not at all in practice.
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    MOELAB_CHECK(n > 0, "cannot write " << path_ << ": " << std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  if (events_ && !record.tensorboard_scalars().empty()) events_->add_scalars(record.step(), record.tensorboard_scalars());
}

void MetricsWriter::log(int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  MetricsRecord r(step);
  for (const auto& [name, v] : scalars) r.scalar(name, v);
  write(r);
}

void MetricsWriter::flush() {
  if (events_) events_->flush();
}

void MetricsWriter::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (events_) events_->close();
}

// ---- reading and truncating ----

MetricsLog read_metrics(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const Error& e) {
    throw MetricsError(e.what());
  }
  MetricsLog log;
  for (auto& [j, line] : parse_lines(path, bytes, &log.truncated_tail)) log.records.push_back(std::move(j));
  return log;
}

std::vector<std::pair<int64_t, double>> metric_series(const std::vector<nlohmann::json>& records,
                                                      const std::string& name, const std::string& sub) {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& r : records) {
    auto it = r.find(name);
    if (it == r.end()) continue;
    const nlohmann::json* v = &*it;
    if (!sub.empty()) {
      if (!v->is_object() || !v->contains(sub)) continue;
      v = &(*v)[sub];
    }
    if (v->is_number()) out.emplace_back(r["step"].get<int64_t>(), v->get<double>());
    else if (v->is_null()) out.emplace_back(r["step"].get<int64_t>(), std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

size_t truncate_metrics_after(const std::string& path, int64_t max_step) {
  if (!std::filesystem::exists(path)) return 0;
  const std::string bytes = read_file_bytes(path);
  bool truncated = false;
  auto lines = parse_lines(path, bytes, &truncated);
  std::string kept;
  size_t dropped = truncated ? 1 : 0;
  for (const auto& [j, line] : lines) {
    if (j["step"].get<int64_t>() > max_step) {
      ++dropped;
      continue;
    }
    kept.append(line.text);
    kept += '\n';
  }
  if (dropped == 0 && (bytes.empty() || bytes.back() == '\n')) return 0;  // nothing to change
  write_file_atomic(path, kept);
  return dropped;
}

}  // namespace moelab::io
