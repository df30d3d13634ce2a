#include "experiments/lib/interval_stats.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "experiments/lib/routing_math.h"

namespace moelab::experiments {

namespace {
std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
double unhex(const nlohmann::json& j) { return std::strtod(j.get<std::string>().c_str(), nullptr); }

nlohmann::json hex_list(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(hex(x));
  return a;
}
std::vector<double> unhex_list(const nlohmann::json& a) {
  std::vector<double> v;
  for (const auto& x : a) v.push_back(unhex(x));
  return v;
}

void add_into(std::vector<double>& dst, const std::vector<double>& src) {
  if (dst.size() < src.size()) dst.resize(src.size(), 0.0);
  for (size_t i = 0; i < src.size(); ++i) dst[i] += src[i];
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

std::pair<int, std::string> split_layer_name(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t sep = name.find_first_of("./", start);
    parts.push_back(name.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
    if (sep == std::string::npos) break;
    start = sep + 1;
  }
  int layer = -1;
  for (const auto& p : parts) {
    if (all_digits(p)) layer = std::atoi(p.c_str());
    else if (p.rfind("layer_", 0) == 0 && all_digits(p.substr(6))) layer = std::atoi(p.c_str() + 6);
  }
  return {layer, parts.back()};
}

void IntervalStats::add_scalar(const std::string& name, double value) {
  auto& s = scalars_[name];
  s.sum += value;
  ++s.count;
}

void IntervalStats::add_layer_scalar(const std::string& name, int layer, double value) {
  auto& s = layers_[name][layer];
  s.sum += value;
  ++s.count;
}

void IntervalStats::add_routing(const LayerRouting& r) {
  auto& acc = routing_[r.layer];
  add_into(acc.expert_counts, r.expert_counts);
  add_into(acc.label_counts, r.label_expert_counts);
  for (const auto& [name, v] : r.stats) add_layer_scalar("moe/" + name, r.layer, v);
}

void IntervalStats::clear() {
  scalars_.clear();
  layers_.clear();
  routing_.clear();
}

double IntervalStats::mean(const std::string& name) const {
  auto it = scalars_.find(name);
  if (it == scalars_.end() || it->second.count == 0) return std::numeric_limits<double>::quiet_NaN();
  return it->second.sum / static_cast<double>(it->second.count);
}

io::MetricsRecord IntervalStats::to_record(int64_t step) const {
  io::MetricsRecord rec(step);
  for (const auto& [name, s] : scalars_) rec.scalar(name, s.sum / static_cast<double>(s.count));
  std::vector<std::pair<int, double>> cv, mom, unused, mi;
  nlohmann::ordered_json loads = nlohmann::ordered_json::object();
  for (const auto& [layer, r] : routing_) {
    LoadStats ls = load_stats(r.expert_counts);
    cv.emplace_back(layer, ls.cv);
    mom.emplace_back(layer, ls.max_over_mean);
    unused.emplace_back(layer, static_cast<double>(ls.unused));
    loads["layer_" + std::to_string(layer)] = ls.fraction;
    int64_t experts = static_cast<int64_t>(r.expert_counts.size());
    if (experts > 0 && !r.label_counts.empty() && r.label_counts.size() % experts == 0)
      mi.emplace_back(layer, mutual_information_bits(r.label_counts,
                                                     static_cast<int64_t>(r.label_counts.size()) / experts, experts));
  }
  if (!cv.empty()) {
    rec.per_layer("moe/load_cv", cv);
    rec.per_layer("moe/load_max_over_mean", mom);
    rec.per_layer("moe/unused_experts", unused);
  }
  if (!mi.empty()) rec.per_layer("moe/label_mi_bits", mi);
  for (const auto& [name, per_layer] : layers_) {
    std::vector<std::pair<int, double>> values;
    for (const auto& [layer, s] : per_layer) values.emplace_back(layer, s.sum / static_cast<double>(s.count));
    rec.per_layer(name, values);
  }
  if (!routing_.empty()) rec.json("moe/load", loads);
  return rec;
}

std::string IntervalStats::serialize() const {
  nlohmann::json j;
  j["scalars"] = nlohmann::json::object();
  for (const auto& [name, s] : scalars_) j["scalars"][name] = {hex(s.sum), s.count};
  j["layers"] = nlohmann::json::object();
  for (const auto& [name, per_layer] : layers_)
    for (const auto& [layer, s] : per_layer) j["layers"][name][std::to_string(layer)] = {hex(s.sum), s.count};
  j["routing"] = nlohmann::json::object();
  for (const auto& [layer, r] : routing_)
    j["routing"][std::to_string(layer)] = {{"experts", hex_list(r.expert_counts)}, {"labels", hex_list(r.label_counts)}};
  return j.dump();
}

IntervalStats IntervalStats::deserialize(const std::string& text) {
  IntervalStats st;
  nlohmann::json j = nlohmann::json::parse(text);
  for (const auto& [name, v] : j.at("scalars").items()) st.scalars_[name] = {unhex(v[0]), v[1].get<int64_t>()};
  for (const auto& [name, per_layer] : j.at("layers").items())
    for (const auto& [layer, v] : per_layer.items()) st.layers_[name][std::stoi(layer)] = {unhex(v[0]), v[1].get<int64_t>()};
  for (const auto& [layer, r] : j.at("routing").items())
    st.routing_[std::stoi(layer)] = {unhex_list(r.at("experts")), unhex_list(r.at("labels"))};
  return st;
}

}  // namespace moelab::experiments
