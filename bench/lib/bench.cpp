#include "bench/lib/bench.h"

#include <algorithm>
#include <chrono>
#include <iostream>

namespace moelab::bench {

std::vector<BenchInfo>& bench_table() {
  static std::vector<BenchInfo> table;
  return table;
}

int run_bench(const std::string& name, const std::vector<std::string>& args) {
  for (auto& b : bench_table()) {
    if (b.name != name) continue;
    std::string argv0 = "moelab bench " + name;
    std::vector<char*> argv{argv0.data()};
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    return b.main(static_cast<int>(argv.size()) - 1, argv.data());
  }
  std::cerr << "moelab bench: unknown benchmark '" << name << "'; available:";
  for (auto& b : bench_table()) std::cerr << " " << b.name;
  std::cerr << "\n";
  return 2;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int64_t> parse_int_list(const std::string& text) {
  std::vector<int64_t> out;
  for (size_t p = 0; p < text.size();) {
    const size_t q = text.find(',', p);
    out.push_back(std::stoll(text.substr(p, q - p)));
    p = q == std::string::npos ? text.size() : q + 1;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace moelab::bench
