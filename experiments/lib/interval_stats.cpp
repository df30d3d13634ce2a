// Interval statistics: sums over a logging interval, the metrics record, exact serialization.
#include "experiments/lib/interval_stats.h"

#include "core/io/text_util.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace moelab::experiments {

namespace {
std::string hex(double v) { return io::hex_double(v); }
double unhex(const nlohmann::json& j) { return io::parse_hex_double(j.get<std::string>()); }
}  // namespace

void IntervalStats::add_scalar(const std::string& name, double value) {
  auto& s = scalars_[name];
  s.sum += value;
  ++s.count;
}

void IntervalStats::add_layer_scalar(const std::string& name, const std::string& layer, double value) {
  auto& s = layers_[name][layer];
  s.sum += value;
  ++s.count;
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
  std::map<std::string, std::vector<std::pair<std::string, double>>> per_layer;
  nlohmann::ordered_json loads = nlohmann::ordered_json::object();
  for (const auto& [path, t] : routing_.layers()) {
    const moe::LoadStats ls = t.load();
    per_layer["moe/load_cv"].emplace_back(path, ls.cv);
    per_layer["moe/load_max_over_mean"].emplace_back(path, ls.max_over_mean);
    per_layer["moe/unused_experts"].emplace_back(path, static_cast<double>(ls.unused));
    per_layer["moe/dropped_fraction"].emplace_back(path, t.dropped_fraction());
    per_layer["moe/router_entropy"].emplace_back(path, t.router_entropy());
    per_layer["moe/router_confidence"].emplace_back(path, t.router_confidence());
    if (t.has_bias) per_layer["moe/bias_range"].emplace_back(path, t.bias_max - t.bias_min);
    if (t.label_rows() > 0) per_layer["moe/label_mi_bits"].emplace_back(path, t.label_mi_bits());
    loads[path] = ls.fraction;
  }
  for (const auto& [name, by_layer] : layers_) {
    auto& values = per_layer[name];
    for (const auto& [layer, s] : by_layer) values.emplace_back(layer, s.sum / static_cast<double>(s.count));
  }
  for (const auto& [name, values] : per_layer) rec.per_layer(name, values);
  if (!routing_.empty()) rec.json("moe/load", loads);
  return rec;
}

std::string IntervalStats::serialize() const {
  nlohmann::json j;
  j["scalars"] = nlohmann::json::object();
  for (const auto& [name, s] : scalars_) j["scalars"][name] = {hex(s.sum), s.count};
  j["layers"] = nlohmann::json::object();
  for (const auto& [name, by_layer] : layers_)
    for (const auto& [layer, s] : by_layer) j["layers"][name][layer] = {hex(s.sum), s.count};
  j["routing"] = routing_.serialize();
  return j.dump();
}

IntervalStats IntervalStats::deserialize(const std::string& text) {
  IntervalStats st;
  nlohmann::json j = nlohmann::json::parse(text);
  for (const auto& [name, v] : j.at("scalars").items()) st.scalars_[name] = {unhex(v[0]), v[1].get<int64_t>()};
  for (const auto& [name, by_layer] : j.at("layers").items())
    for (const auto& [layer, v] : by_layer.items()) st.layers_[name][layer] = {unhex(v[0]), v[1].get<int64_t>()};
  st.routing_ = moe::RoutingLog::deserialize(j.at("routing").get<std::string>());
  return st;
}

}  // namespace moelab::experiments
