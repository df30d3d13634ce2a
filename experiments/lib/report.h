#pragma once
// The run report: <run_dir>/report/index.html, one self-contained page built only from the run
// directory's files, plus the CSVs of its plotted data. Sections and files: docs/runner.md (The report).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::experiments {

// Writes report/index.html and the CSVs; returns the path of index.html. Throws moelab::Error when
// the run directory has no metrics.jsonl.
std::filesystem::path write_report(const std::filesystem::path& run_dir);

// The names of the plain scalars in metrics records ("train/loss", "val/accuracy"), sorted, and of the
// per-layer scalars ("moe/load_cv") with their layer keys ("layer_1").
std::vector<std::string> scalar_names(const std::vector<nlohmann::json>& records);
std::vector<std::pair<std::string, std::vector<std::string>>> per_layer_names(const std::vector<nlohmann::json>& records);

}  // namespace moelab::experiments
