#pragma once
// Subcommand registry of the `moelab` program: each experiments/cli/cmd_<name>.cpp registers itself
// with a static Registration. How to add one and the exit codes: docs/runner.md (Commands).
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace moelab::cli {

using SetupFn = std::function<void(CLI::App& sub)>;

struct CommandInfo {
  std::string name, help;
  SetupFn setup;
};

std::vector<CommandInfo>& command_table();

struct Registration {
  Registration(std::string name, std::string help, SetupFn setup) {
    command_table().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

// Exit codes of the program (issue contract): 0 success, 1 run failed, 2 bad usage or config.
enum ExitCode : int { kOk = 0, kRunFailed = 1, kBadUsage = 2 };
void set_exit_code(int code);
int exit_code();

}  // namespace moelab::cli
