#pragma once
// What task `lm` adds to a run directory: bits per byte per domain, the specialization study (I(domain;
// expert), code against prose, same expert for consecutive tokens) and samples coloured by expert
// (report/sections/lm.html). Files and criterion: docs/text.md (The specialization study).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "text/model/bits_per_byte.h"

namespace moelab::experiments {

// One MoE layer's routing on the evaluated set.
struct LayerSpecialization {
  std::string path;
  int64_t num_experts = 0;
  std::vector<double> domain_expert;  // (domains x E) assignment counts, row-major
  double same_pairs = 0, pairs = 0;   // consecutive token pairs of a sequence with the same top expert / all
  std::vector<double> top_counts;     // (E) tokens whose top expert is e (the chance rate's marginal)

  double same_rate() const { return pairs > 0 ? same_pairs / pairs : 0.0; }
  // What same_rate would be if each token drew its top expert independently from the marginal: sum_e p_e^2.
  double chance_same_rate() const;
};

// Code (cpp, python) against prose (the fortune languages) in one layer: each group's expert distribution,
// their total variation distance, and I(group; expert) in bits over the tokens of the two groups.
struct CodeProseSplit {
  std::vector<double> code, prose;  // (E) distributions
  double total_variation = 0, mi_bits = 0, group_entropy_bits = 0;
  bool valid = false;               // both groups present
};
CodeProseSplit code_prose_split(const LayerSpecialization& layer, const std::vector<std::string>& domains);
// The study's criterion: "code and prose go to different experts" holds in a layer when the total variation
// distance of their expert distributions is at least this (more than half of the mass sits on experts the
// other group does not use as much).
inline constexpr double kCodeProseThreshold = 0.5;

// A sample document with its pieces and, per MoE layer, each piece's top expert (-1: dropped).
struct RoutedSample {
  std::string domain;
  std::vector<std::string> pieces;              // decoded text of each piece (runs of byte pieces merged)
  std::vector<std::vector<int64_t>> experts;    // [layer][piece]
};

struct LmReport {
  std::string set_name;                         // "test"
  std::vector<std::string> domains;
  text::ByteLossTally bpb{0};
  std::vector<LayerSpecialization> layers;
  std::vector<RoutedSample> samples;
  std::vector<std::string> layer_paths;         // rows of RoutedSample::experts
};

std::string lm_report_html(const LmReport& report);
// Writes lm/bpb_<set>.csv, routing/consecutive_same_expert.csv (with layers) and report/sections/lm.html.
void write_lm_report(const std::filesystem::path& run_dir, const LmReport& report);

}  // namespace moelab::experiments
