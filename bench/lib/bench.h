#pragma once
// Benchmark registry: each bench/lib/bench_<name>.cpp registers `moelab bench <name>`:
//   static moelab::bench::BenchRegistration reg{"ops", "matmul and block rates", &bench_ops_main};
// A bench prints ratios measured in one run (JSON lines or a table), never absolute pass/fail.
#include <string>
#include <vector>

namespace moelab::bench {

using BenchMain = int (*)(int argc, char** argv);
struct BenchInfo {
  std::string name, help;
  BenchMain main;
};
std::vector<BenchInfo>& bench_table();
struct BenchRegistration {
  BenchRegistration(std::string name, std::string help, BenchMain fn) {
    bench_table().push_back({std::move(name), std::move(help), fn});
  }
};
// Seconds on the steady clock, and the median of timings (the mean of the middle two for an even count).
double now_s();
double median(std::vector<double> v);
// "256,1024" -> {256, 1024}; "" -> {} (command-line lists of the benches).
std::vector<int64_t> parse_int_list(const std::string& text);

// Runs the named bench with argv[0] = "moelab bench <name>"; returns 2 for an unknown name.
int run_bench(const std::string& name, const std::vector<std::string>& args);

}  // namespace moelab::bench
