#include "bench/lib/bench.h"

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

}  // namespace moelab::bench
