#include "experiments/lib/evaluate_run.h"

#include "core/autograd/autograd.h"
#include "core/nn/tensor_file.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/run_config.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

CheckpointEval evaluate_checkpoint(const fs::path& run_dir, std::optional<int64_t> step) {
  fs::path config_path = run_dir / "config.toml";
  MOELAB_CHECK(fs::exists(config_path), run_dir.string() << " has no config.toml: is it a moelab run directory?");
  Config cfg = load_run_config(config_path.string(), {});
  const CheckpointInfo info = checkpoint_or_latest(run_dir, step);
  CheckpointData d = read_checkpoint(info);

  auto task = find_task(cfg.get_string("task")).make();
  TaskContext ctx;
  ctx.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  // No run_dir: evaluating a checkpoint must not rewrite the run's files.
  task->build(cfg, ctx);
  std::shared_ptr<nn::Module> model = task->make_model();
  load_model_state(*model, d, info);
  task->set_model(model);
  TaskState ts;
  for (const auto& [name, t] : d.state)
    if (name.rfind("task.", 0) == 0) ts.tensors.emplace_back(name.substr(5), t);
  for (const auto& [k, v] : d.state_metadata)
    if (k.rfind("task.", 0) == 0) ts.values[k.substr(5)] = v;
  task->load_state(ts);

  CheckpointEval out;
  out.step = info.step;
  out.checkpoint = info.dir;
  EvalContext ec(*model, info.step, true, nn::evaluation_draw_key(ctx.seed, info.step), Device::cpu());
  {
    NoGradGuard no_grad;
    model->eval();
    out.result = task->evaluate(ec);
  }
  const int64_t rows = static_cast<int64_t>(task->label_names().size());
  if (rows > 0)
    for (const auto& [path, t] : ec.routing.layers())
      out.label_mi_bits.emplace_back(path, moe::mutual_information_bits(t.label_matrix(rows), rows, t.num_experts));
  out.label_names = task->label_names();
  out.headline = task->headline_metrics();
  return out;
}

}  // namespace moelab::experiments
