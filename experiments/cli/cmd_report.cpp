// `moelab report RUN_DIR`: (re)writes RUN_DIR/report/index.html from the run's files.
#include <filesystem>
#include <iostream>

#include "experiments/cli/command.h"
#include "experiments/lib/report.h"

using namespace moelab;

namespace {
std::string g_run_dir;

cli::Registration reg{"report", "Write a run's HTML report (report/index.html) and its CSV files", [](CLI::App& sub) {
                        sub.add_option("run_dir", g_run_dir, "run directory")->required()->check(CLI::ExistingDirectory);
                        sub.callback([] {
                          if (!std::filesystem::exists(std::filesystem::path(g_run_dir) / "metrics.jsonl")) {
                            std::cerr << "moelab report: " << g_run_dir << " has no metrics.jsonl: is it a run directory?\n";
                            cli::set_exit_code(cli::kBadUsage);
                            return;
                          }
                          std::cout << "report: " << experiments::write_report(g_run_dir).string() << "\n";
                        });
                      }};
}  // namespace
