// `moelab bench NAME [args...]`: runs one benchmark of bench/lib (see bench/lib/bench.h). Everything
// after NAME (flags included) is passed to the benchmark unparsed.
#include "bench/lib/bench.h"
#include "experiments/cli/command.h"

namespace {
std::string g_name;

moelab::cli::Registration reg{
    "bench", "Run a benchmark (ops, moe, env, train, dist); prints ratios measured in one run", [](CLI::App& sub) {
      sub.add_option("name", g_name, "benchmark name: ops, moe, env, train, dist")->required();
      sub.prefix_command();  // stop parsing after NAME: the rest belongs to the benchmark
      sub.callback([&sub] {
        std::vector<std::string> rest = sub.remaining();
        if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
        moelab::cli::set_exit_code(moelab::bench::run_bench(g_name, rest));
      });
    }};
}  // namespace
