#pragma once
// The run report: <run_dir>/report/index.html, one self-contained page (inline SVG and CSS, no scripts,
// no network) built only from the files of the run directory (summary.json, metrics.jsonl,
// config.toml), so `moelab report RUN_DIR` can rebuild it at any time. Sections (each a
// <section id=...>): summary, curves (losses and metrics), moe (load CV, label/expert mutual
// information and balancing terms over time; expert load over time as a heatmap per layer), routing
// (labels x experts heatmaps of the last evaluation with their mutual information), then every
// fragment a task wrote to report/sections/<name>.html (whole <section>s, self-contained, pasted in
// name order), then config.
// CSV files beside it hold the plotted data: scalars.csv, expert_load_layer_<i>.csv,
// labels_experts_layer_<i>.csv.
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
