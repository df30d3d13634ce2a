#pragma once
// The run's metric log: metrics.jsonl, one JSON object per logged step written with a single append,
// each scalar mirrored to the run's TensorBoard events. Line format and examples: docs/io.md.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/io/tfevents.h"
#include "core/util/check.h"

namespace moelab::io {

class MetricsError : public Error {
 public:
  using Error::Error;
};

// One logged step.
class MetricsRecord {
 public:
  explicit MetricsRecord(int64_t step);
  // A scalar; mirrored to TensorBoard under `name`.
  MetricsRecord& scalar(const std::string& name, double value);
  // Per-layer values keyed by module path: {"<path>": v, ...}; mirrored as `<name>/<path>`.
  MetricsRecord& per_layer(const std::string& name, const std::vector<std::pair<std::string, double>>& values);
  // Any JSON (arrays of expert loads, nested stats); JSONL only, not mirrored.
  MetricsRecord& json(const std::string& name, nlohmann::ordered_json value);

  int64_t step() const { return step_; }
  const nlohmann::ordered_json& fields() const { return fields_; }
  const std::vector<std::pair<std::string, double>>& tensorboard_scalars() const { return mirrored_; }

 private:
  int64_t step_;
  nlohmann::ordered_json fields_ = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, double>> mirrored_;
};

struct MetricsWriterOptions {
  bool tensorboard = true;         // also write events.out.tfevents.* into the run directory
  std::function<double()> clock{};  // wall time in seconds; defaults to the system clock
  EventWriterOptions events{};     // its clock defaults to `clock`
  // Resuming from a checkpoint at this step: lines with a larger step are dropped first. -1: none.
  int64_t resume_after_step = -1;
};

class MetricsWriter {
 public:
  // Appends to <run_dir>/metrics.jsonl (created with the directory if missing). A partial last line
  // left by a killed run is removed before appending.
  explicit MetricsWriter(const std::string& run_dir, MetricsWriterOptions options = {});
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(const MetricsRecord& record);
  void log(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  const std::string& path() const { return path_; }
  std::string events_path() const { return events_ ? events_->path() : ""; }
  void flush();  // the JSONL file is unbuffered; this flushes the event file
  void close();

 private:
  MetricsWriterOptions options_;
  std::string path_;
  int fd_ = -1;
  std::unique_ptr<EventWriter> events_;
};

struct MetricsLog {
  std::vector<nlohmann::json> records;
  bool truncated_tail = false;  // the last line was cut short and was skipped
};

// Reads metrics.jsonl. A cut-off last line is skipped (truncated_tail); an unreadable line anywhere
// else is a MetricsError naming path:line.
MetricsLog read_metrics(const std::string& path);
// (step, value) of a scalar, or of `name`[`sub`] for per-layer values ("moe/load_cv", "blocks.3.moe").
// Records without it are skipped; null reads as NaN.
std::vector<std::pair<int64_t, double>> metric_series(const std::vector<nlohmann::json>& records,
                                                      const std::string& name, const std::string& sub = "");
// Atomically rewrites `path` without the lines whose step is greater than `max_step` (and without a
// cut-off last line). Returns how many lines were dropped; a missing file drops nothing.
size_t truncate_metrics_after(const std::string& path, int64_t max_step);

}  // namespace moelab::io
