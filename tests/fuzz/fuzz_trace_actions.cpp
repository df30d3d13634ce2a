// libFuzzer target: `moelab env trace` action files, then the trace itself for the parsed actions.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "rl/envs/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::rl;
  if (size == 0) return 0;
  const GameId game = static_cast<GameId>(data[0] % kNumGames);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  try {
    std::vector<int> actions = parse_actions(in, "fuzz.txt");
    if (actions.size() > 4000) actions.resize(4000);  // keeps one input fast; the games are tested elsewhere
    std::ostringstream out;
    TraceOptions options;
    options.seed = data[0];
    write_trace(out, game, actions, options);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
