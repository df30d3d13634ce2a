// `moelab bench NAME [args...]`: runs one benchmark of bench/lib (see bench/lib/bench.h).
#include "bench/lib/bench.h"
#include "experiments/cli/command.h"

namespace {
struct BenchArgs {
  std::string name;
  std::vector<std::string> rest;
};
BenchArgs g_args;

moelab::cli::Registration reg{"bench", "Run a benchmark (ops, moe, env, train); prints measured ratios",
                              [](CLI::App& sub) {
                                sub.add_option("name", g_args.name, "benchmark name")->required();
                                sub.add_option("args", g_args.rest, "arguments passed to the benchmark");
                                sub.prefix_command();
                                sub.callback([] {
                                  moelab::cli::set_exit_code(moelab::bench::run_bench(g_args.name, g_args.rest));
                                });
                              }};
}  // namespace
