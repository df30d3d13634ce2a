// The `moelab` program: one subcommand per experiments/cli/cmd_*.cpp (see command.h).
#include <algorithm>
#include <exception>
#include <iostream>

#include "core/dist/communicator.h"
#include "experiments/cli/command.h"

int main(int argc, char** argv) {
  using namespace moelab::cli;
  CLI::App app{"moelab: a multimodal Mixture-of-Experts research sandbox"};
  app.require_subcommand(1);
  auto& table = command_table();
  std::sort(table.begin(), table.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& cmd : table) cmd.setup(*app.add_subcommand(cmd.name, cmd.help));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kBadUsage;
  } catch (const std::exception& e) {
    std::cerr << "moelab: error: " << e.what() << "\n";
    // Under mpirun a failed rank stops the whole job (the others may be waiting in a collective).
    if (moelab::dist::world_is_distributed()) moelab::dist::abort_job(e.what());
    return exit_code() == kOk ? kRunFailed : exit_code();
  }
  if (exit_code() != kOk && moelab::dist::world_is_distributed())
    moelab::dist::abort_job("exited with code " + std::to_string(exit_code()));
  return exit_code();
}
