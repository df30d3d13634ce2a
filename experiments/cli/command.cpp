#include "experiments/cli/command.h"

namespace moelab::cli {

std::vector<CommandInfo>& command_table() {
  static std::vector<CommandInfo> table;
  return table;
}

namespace {
int g_exit_code = kOk;
}
void set_exit_code(int code) { g_exit_code = code; }
int exit_code() { return g_exit_code; }

}  // namespace moelab::cli
