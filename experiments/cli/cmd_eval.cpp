// `moelab eval RUN_DIR [--checkpoint STEP] [--json]`: evaluates a checkpoint of a run.
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "experiments/cli/command.h"
#include "experiments/lib/evaluate_run.h"

using namespace moelab;

namespace {
struct EvalArgs {
  std::string run_dir;
  int64_t step = -1;
  bool json = false;
};
EvalArgs g;

void eval_command() {
  using namespace moelab::experiments;
  CheckpointEval ev;
  try {
    ev = evaluate_checkpoint(g.run_dir, g.step >= 0 ? std::optional<int64_t>(g.step) : std::nullopt);
  } catch (const ConfigError& e) {
    std::cerr << "moelab eval: config error:\n" << e.what() << "\n";
    cli::set_exit_code(cli::kBadUsage);
    return;
  }
  nlohmann::ordered_json out;
  out["run_dir"] = g.run_dir;
  out["checkpoint"] = ev.checkpoint.string();
  out["step"] = ev.step;
  for (const auto& [k, v] : ev.result.metrics) out["metrics"][k] = v;
  for (const auto& [path, bits] : ev.label_mi_bits) out["label_mi_bits"][path] = bits;
  if (g.json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "checkpoint " << ev.checkpoint.string() << " (step " << ev.step << ")\n";
  for (const auto& [k, v] : ev.result.metrics) std::cout << "  " << k << " " << v << "\n";
  if (out.contains("label_mi_bits"))
    for (const auto& [layer, v] : out["label_mi_bits"].items())
      std::cout << "  routing MI " << layer << " " << v.get<double>() << " bits\n";
}

cli::Registration reg{"eval", "Evaluate a run's checkpoint (the newest complete one by default)", [](CLI::App& sub) {
                        sub.add_option("run_dir", g.run_dir, "run directory")->required()->check(CLI::ExistingDirectory);
                        sub.add_option("--checkpoint", g.step, "the step of the checkpoint to evaluate");
                        sub.add_flag("--json", g.json, "print the results as JSON");
                        sub.callback([] { eval_command(); });
                      }};
}  // namespace
