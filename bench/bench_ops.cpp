// Standalone `bench_ops`: the same as `moelab bench ops`.
#include <string>
#include <vector>

#include "bench/lib/bench.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return moelab::bench::run_bench("ops", args);
}
