#include "experiments/lib/trainer.h"

#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/backend/device_select.h"
#include "core/io/atomic_file.h"
#include "core/io/metrics.h"
#include "core/io/text_util.h"
#include "core/nn/tensor_file.h"
#include "core/ops/ops.h"
#include "core/optim/clip.h"
#include "core/optim/optimizer.h"
#include "core/optim/schedule.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/event_replay.h"
#include "experiments/lib/interval_stats.h"
#include "experiments/lib/micro_batches.h"
#include "experiments/lib/report.h"
#include "experiments/lib/routing_math.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/run_dir.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

namespace {

// Ctrl-C: the first press asks the loop to checkpoint and stop; a second one leaves at once.
std::atomic<int> g_interrupts{0};
extern "C" void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) ::_exit(130);
}
class SigintScope {
 public:
  SigintScope() {
    g_interrupts = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_);
  }
  ~SigintScope() { ::sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.5g", v);
  return b;
}

std::string hex(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%a", v);
  return b;
}

// First non-finite element of a float tensor, or false.
bool has_non_finite(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return false;
  if (t.dtype() == DType::f64) {
    for (double v : t.to_vector<double>())
      if (!std::isfinite(v)) return true;
  } else {
    for (float v : t.to_vector<float>())
      if (!std::isfinite(v)) return true;
  }
  return false;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& cfg, const NamedTensors& params) {
  std::string name = cfg.get_string("optim.name");
  double lr = cfg.get_float("optim.lr"), wd = cfg.get_float("optim.weight_decay");
  if (name == "sgd")
    return std::make_unique<optim::SGD>(params, optim::SgdOptions{lr, cfg.get_float("optim.momentum"), wd, false});
  if (name == "rmsprop")
    return std::make_unique<optim::RMSprop>(
        params, optim::RmspropOptions{lr, cfg.get_float("optim.alpha"), cfg.get_float("optim.eps"), wd,
                                      cfg.get_bool("optim.centered")});
  return std::make_unique<optim::AdamW>(
      params, optim::AdamWOptions{lr, cfg.get_float("optim.beta1"), cfg.get_float("optim.beta2"),
                                  cfg.get_float("optim.eps"), wd, cfg.get_bool("optim.no_decay_for_vectors")});
}

class Trainer {
 public:
  Trainer(const Config& cfg, const TrainerOptions& o) : cfg_(cfg), opt_(o) {}

  RunOutcome run() {
    auto t0 = std::chrono::steady_clock::now();
    setup();
    RunOutcome out;
    out.run_dir = opt_.run_dir;
    out.status = "completed";
    {
      SigintScope sigint;
      ProgressOptions popts;
      popts.mode = opt_.progress;
      popts.plain_every_s = cfg_.get_float("train.progress_every_s");
      popts.initial = step_;
      Progress progress("train", total_steps_, popts);
      progress_ = &progress;
      try {
        while (step_ < total_steps_) {
          train_one_step();
          ++step_;
          task_->after_optimizer_step(step_ - 1);
          if (step_ % log_every_ == 0 || step_ == total_steps_) log_interval();
          if (eval_every_ > 0 && step_ % eval_every_ == 0) evaluate(true);
          if (checkpoint_every_ > 0 && step_ % checkpoint_every_ == 0) checkpoint();
          progress.update(step_, {{"loss", last_loss_}, {"lr", optimizer_->lr()}});
          if (sigint_at_step_ == step_) ::raise(SIGINT);
          if (g_interrupts > 0 && step_ < total_steps_) {
            if (last_checkpoint_step_ != step_) checkpoint();
            out.status = "interrupted";
            out.error = "interrupted by Ctrl-C at step " + std::to_string(step_) + "; continue with --resume";
            break;
          }
        }
        if (out.status == "completed") {
          if (last_eval_step_ != step_) evaluate(true);
          else if (!have_eval_) evaluate(false);
          if (last_checkpoint_step_ != step_) checkpoint();
        }
      } catch (const NonFiniteError& e) {
        out.status = "failed";
        out.error = e.what();
      } catch (const ConfigError&) {
        throw;
      } catch (const std::exception& e) {
        out.status = "failed";
        out.error = std::string("step ") + std::to_string(step_ + 1) + ": " + e.what();
      }
      progress.finish();
      progress_ = nullptr;
    }
    if (!out.error.empty()) log_->line("moelab: " + out.status + ": " + out.error);
    metrics_->close();
    out.steps = step_;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.summary = make_summary(out, wall);
    io::write_file_atomic((opt_.run_dir / "summary.json").string(), out.summary.dump(2) + "\n");
    if (opt_.write_report) {
      try {
        fs::path report = write_report(opt_.run_dir);
        log_->line("report: " + report.string());
      } catch (const std::exception& e) {
        log_->line(std::string("moelab: the report could not be written: ") + e.what());
      }
    }
    log_->line("summary: " + (opt_.run_dir / "summary.json").string());
    return out;
  }

 private:
  // A line for the console and log.txt; through the bar while one is drawn on the terminal.
  void say(const std::string& line) {
    if (progress_ && progress_->mode() == ProgressMode::Bar) {
      progress_->log(line);
      log_->file_only(line);
    } else {
      log_->line(line);
    }
  }

  void setup() {
    // The device first: a config that names an absent one leaves nothing behind.
    Device device = Device::cpu();
    try {
      device = resolve_device(cfg_.get_string("device"));
    } catch (const Error& e) {
      // The message names the key and value; the config's place replaces the source location.
      throw ConfigError({cfg_.origin("device").str() + ": " + e.message()});
    }
    set_cuda_allow_tf32(cfg_.get_bool("train.allow_tf32"));
    check_workers_supported(*find_task(cfg_.get_string("task")).make(), cfg_, device);
    fs::create_directories(opt_.run_dir);
    auto ckpt = opt_.resume ? latest_checkpoint(opt_.run_dir) : std::nullopt;
    if (!opt_.resume && (fs::exists(opt_.run_dir / "metrics.jsonl") || fs::exists(opt_.run_dir / "ckpt")))
      throw ConfigError({opt_.run_dir.string() + " already holds a run; pass --resume to continue it or choose another --run-dir"});
    write_run_files(opt_.run_dir, cfg_, opt_.argv, opt_.overrides, opt_.resume && fs::exists(opt_.run_dir / "cmdline.txt"));
    log_ = std::make_unique<RunLog>(opt_.run_dir / "log.txt");

    // Tests interrupt a run at an exact step (nothing may depend on timing): MOELAB_TEST_SIGINT_AT_STEP=N.
    if (const char* env = std::getenv("MOELAB_TEST_SIGINT_AT_STEP")) sigint_at_step_ = std::atoll(env);
    int64_t threads = cfg_.get_int("train.threads");
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
    threads_ = omp_get_max_threads();

    if (device.is_cuda())
      say("device: " + cuda_device_summary(device.index) + (cuda_allow_tf32() ? " (TF32 matmuls allowed)" : ""));
    task_ = find_task(cfg_.get_string("task")).make();
    TaskContext ctx;
    ctx.device = device;
    ctx.seed = static_cast<uint64_t>(cfg_.get_int("seed"));
    ctx.run_dir = opt_.run_dir.string();
    ctx.log = [this](const std::string& line) { say(line); };
    task_->build(cfg_, ctx);
    params_ = task_->named_parameters();
    for (const auto& [name, p] : params_) param_list_.push_back(p);
    micro_batches_ = std::make_unique<MicroBatchRunner>(*task_, cfg_, params_);

    int64_t accum = cfg_.get_int("train.grad_accum");
    total_steps_ = cfg_.get_int("train.steps");
    int64_t epochs = cfg_.get_int("train.epochs");
    if (epochs > 0) {
      int64_t per_epoch = task_->micro_batches_per_epoch();
      if (per_epoch <= 0)
        throw ConfigError({cfg_.origin("train.epochs").str() + ": train.epochs: task \"" + cfg_.get_string("task") +
                           "\" has no epochs; use train.steps"});
      total_steps_ = epochs * ((per_epoch + accum - 1) / accum);
    }
    log_every_ = cfg_.get_int("train.log_every");
    eval_every_ = cfg_.get_int("train.eval_every");
    checkpoint_every_ = cfg_.get_int("train.checkpoint_every");

    optimizer_ = make_optimizer(cfg_, params_);
    schedule_.kind = optim::parse_schedule_kind(cfg_.get_string("optim.schedule"));
    schedule_.base_lr = cfg_.get_float("optim.lr");
    schedule_.min_lr = schedule_.base_lr * cfg_.get_float("optim.min_lr_ratio");
    schedule_.warmup_steps = cfg_.get_int("optim.warmup_steps");
    schedule_.total_steps = total_steps_;
    if (schedule_.kind != optim::ScheduleKind::constant && schedule_.warmup_steps >= total_steps_)
      throw ConfigError({cfg_.origin("optim.warmup_steps").str() + ": optim.warmup_steps = " +
                         std::to_string(schedule_.warmup_steps) + " must be below the number of steps (" +
                         std::to_string(total_steps_) + ") for the " + cfg_.get_string("optim.schedule") + " schedule"});
    schedule_.validate();

    int64_t num_params = 0;
    for (const auto& p : param_list_) num_params += p.numel();
    io::MetricsWriterOptions mopts;
    if (ckpt) {
      restore(*ckpt);
      prune_checkpoints(opt_.run_dir, 0);  // drops checkpoints a killed run left incomplete
      replay_events_up_to(opt_.run_dir, step_);
      mopts.resume_after_step = step_;
    } else if (opt_.resume) {
      // Nothing complete to resume from: start over, dropping what a killed first attempt left.
      replay_events_up_to(opt_.run_dir, 0);
      io::truncate_metrics_after((opt_.run_dir / "metrics.jsonl").string(), -1);
      prune_checkpoints(opt_.run_dir, 0);
    }
    metrics_ = std::make_unique<io::MetricsWriter>(opt_.run_dir.string(), mopts);
    log_->line("moelab run: task " + cfg_.get_string("task") + ", " + std::to_string(num_params) + " parameters, " +
               std::to_string(total_steps_) + " steps, " + std::to_string(threads_) + " threads");
    log_->line("run directory: " + opt_.run_dir.string());
    if (ckpt) log_->line("resumed from " + ckpt->dir.string() + " (step " + std::to_string(step_) + ")");
    else if (opt_.resume) log_->line("no complete checkpoint in " + opt_.run_dir.string() + "; starting at step 0");
  }

  void restore(const CheckpointInfo& info) {
    CheckpointData d = read_checkpoint(info);
    step_ = d.step;
    std::vector<std::string> problems;
    for (auto& [name, p] : params_) {
      const Tensor* saved = nn::find_tensor(d.model, name);
      if (!saved) problems.push_back("missing " + name);
      else if (!(saved->shape() == p.shape())) problems.push_back(name + " has shape " + saved->shape().str() + ", the model " + p.shape().str());
      else p.copy_(*saved);
    }
    if (d.model.size() != params_.size()) problems.push_back("the checkpoint holds " + std::to_string(d.model.size()) + " tensors, the model " + std::to_string(params_.size()));
    if (!problems.empty()) {
      std::string msg = info.dir.string() + "/model.safetensors does not match the model:";
      for (const auto& p : problems) msg += " " + p + ";";
      MOELAB_FAIL(msg);
    }
    NamedTensors opt_state;
    TaskState task_state;
    for (const auto& [name, t] : d.state) {
      if (name.rfind("optim.", 0) == 0) opt_state.emplace_back(name.substr(6), t);
      else if (name.rfind("task.", 0) == 0) task_state.tensors.emplace_back(name.substr(5), t);
    }
    for (const auto& [k, v] : d.state_metadata)
      if (k.rfind("task.", 0) == 0) task_state.values[k.substr(5)] = v;
    optimizer_->load_state_dict(opt_state);
    task_->load_state(task_state);
    auto meta = [&](const std::string& k) {
      auto it = d.state_metadata.find(k);
      MOELAB_CHECK(it != d.state_metadata.end(), info.dir.string() << "/state.safetensors has no metadata \"" << k << "\"");
      return it->second;
    };
    interval_ = IntervalStats::deserialize(meta("trainer.interval"));
    last_eval_step_ = std::stoll(meta("trainer.last_eval_step"));
    last_logged_loss_ = std::strtod(meta("trainer.last_logged_loss").c_str(), nullptr);
    last_loss_ = last_logged_loss_;
    last_checkpoint_step_ = step_;
    int saved_threads = std::stoi(meta("threads"));
    if (saved_threads != threads_)
      log_->line("warning: the checkpoint was written with " + std::to_string(saved_threads) + " threads, this run uses " +
                 std::to_string(threads_) + "; results will not match an uninterrupted run bit for bit");
  }

  [[noreturn]] void non_finite(const std::string& what, double value) {
    std::string culprit;
    for (const auto& [name, p] : params_)
      if (has_non_finite(p)) {
        culprit = "parameter " + name;
        break;
      }
    throw NonFiniteError("step " + std::to_string(step_ + 1) + ": non-finite " + what + " (" + num(value) +
                         "); first offending tensor: " + (culprit.empty() ? what : culprit));
  }

  void train_one_step() {
    double lr = schedule_.lr_at(step_);
    optimizer_->set_lr(lr);
    double loss_sum = 0;
    for (const MicroBatchOutcome& o : micro_batches_->run(step_)) {
      const StepResult& r = o.result;
      if (!std::isfinite(o.loss)) non_finite("loss", o.loss);
      for (size_t i = 0; i < r.aux_losses.size(); ++i) {
        const std::string& name = r.aux_losses[i].name;
        const double v = o.aux_values[i];
        if (!std::isfinite(v)) non_finite("auxiliary loss " + name, v);
        auto [layer, term] = split_layer_name(name);
        if (layer >= 0) interval_.add_layer_scalar("moe/" + term, layer, v);
        else interval_.add_scalar("train/" + name, v);
      }
      loss_sum += o.loss;
      interval_.add_scalar("train/loss", o.loss);
      for (const auto& [k, v] : r.metrics) interval_.add_scalar("train/" + k, v);
      for (const auto& routing : r.routing) interval_.add_routing(routing);
    }
    double clip = cfg_.get_float("optim.clip_grad_norm");
    double norm = clip > 0 ? optim::clip_grad_norm(param_list_, clip) : optim::global_grad_norm(param_list_);
    if (!std::isfinite(norm)) {
      std::string culprit = "the gradient";
      for (const auto& [name, p] : params_)
        if (has_non_finite(p.grad())) {
          culprit = "gradient of " + name;
          break;
        }
      throw NonFiniteError("step " + std::to_string(step_ + 1) + ": non-finite gradient norm (" + num(norm) +
                           "); first offending tensor: " + culprit);
    }
    {
      NoGradGuard no_grad;
      optimizer_->step();
    }
    optimizer_->zero_grad();
    interval_.add_scalar("train/grad_norm", norm);
    interval_.add_scalar("train/lr", lr);
    last_loss_ = loss_sum / micro_batches_->grad_accum();
  }

  void log_interval() {
    if (interval_.empty()) return;
    last_logged_loss_ = interval_.mean("train/loss");
    log_->file_only("step " + std::to_string(step_) + "/" + std::to_string(total_steps_) + " loss " +
                    num(last_logged_loss_) + " lr " + num(interval_.mean("train/lr")) + " grad_norm " +
                    num(interval_.mean("train/grad_norm")));
    metrics_->write(interval_.to_record(step_));
    interval_.clear();
  }

  void evaluate(bool log_it) {
    EvalResult e;
    {
      NoGradGuard no_grad;
      e = task_->evaluate(step_);
    }
    last_eval_ = e;
    have_eval_ = true;
    if (!log_it) return;
    last_eval_step_ = step_;
    io::MetricsRecord rec(step_);
    std::string line = "eval step " + std::to_string(step_) + ":";
    for (const auto& [k, v] : e.metrics) {
      rec.scalar(k, v);
      line += " " + k + " " + num(v);
    }
    auto labels = task_->label_names();
    std::vector<std::pair<int, double>> mi;
    nlohmann::ordered_json matrices = nlohmann::ordered_json::object(), loads = nlohmann::ordered_json::object();
    for (const auto& r : e.routing) {
      std::string layer = "layer_" + std::to_string(r.layer);
      loads[layer] = load_stats(r.expert_counts).fraction;
      int64_t experts = static_cast<int64_t>(r.expert_counts.size());
      if (experts == 0 || r.label_expert_counts.empty()) continue;
      int64_t rows = static_cast<int64_t>(r.label_expert_counts.size()) / experts;
      double bits = mutual_information_bits(r.label_expert_counts, rows, experts);
      mi.emplace_back(r.layer, bits);
      line += " mi/" + layer + " " + num(bits) + " bits";
      nlohmann::ordered_json m = nlohmann::ordered_json::array();
      for (int64_t i = 0; i < rows; ++i)
        m.push_back(std::vector<double>(r.label_expert_counts.begin() + i * experts,
                                        r.label_expert_counts.begin() + (i + 1) * experts));
      matrices[layer] = m;
      write_routing_csv(r, labels, rows, experts);
    }
    if (!mi.empty()) rec.per_layer("val/label_mi_bits", mi);
    if (!e.routing.empty()) rec.json("val/load", loads);
    if (!matrices.empty()) rec.json("val/labels_experts", matrices);
    metrics_->write(rec);
    say(line);
  }

  void write_routing_csv(const LayerRouting& r, const std::vector<std::string>& labels, int64_t rows, int64_t experts) {
    std::ostringstream os;
    os << "label";
    for (int64_t e = 0; e < experts; ++e) os << ",expert_" << e;
    os << "\n";
    for (int64_t i = 0; i < rows; ++i) {
      os << (i < static_cast<int64_t>(labels.size()) ? labels[i] : std::to_string(i));
      for (int64_t e = 0; e < experts; ++e) os << "," << io::format_double(r.label_expert_counts[i * experts + e]);
      os << "\n";
    }
    fs::create_directories(opt_.run_dir / "routing");
    io::write_file_atomic((opt_.run_dir / "routing" / ("labels_experts_layer_" + std::to_string(r.layer) + ".csv")).string(),
                          os.str());
  }

  void checkpoint() {
    metrics_->flush();  // everything logged up to a checkpoint is on disk before it counts as complete
    CheckpointData d;
    d.step = step_;
    for (const auto& [name, p] : params_) d.model.emplace_back(name, p.detach());
    d.model_metadata = {{"step", std::to_string(step_)}, {"task", cfg_.get_string("task")}, {"config", cfg_.to_toml()}};
    for (auto& [name, t] : optimizer_->state_dict()) d.state.emplace_back("optim." + name, t);
    TaskState ts;
    task_->save_state(ts);
    for (auto& [name, t] : ts.tensors) d.state.emplace_back("task." + name, t);
    d.state_metadata = {{"step", std::to_string(step_)},
                        {"threads", std::to_string(threads_)},
                        {"trainer.interval", interval_.serialize()},
                        {"trainer.last_eval_step", std::to_string(last_eval_step_)},
                        {"trainer.last_logged_loss", hex(last_logged_loss_)}};
    for (const auto& [k, v] : ts.values) d.state_metadata["task." + k] = v;
    fs::path dir = write_checkpoint(opt_.run_dir, d);
    prune_checkpoints(opt_.run_dir, cfg_.get_int("train.keep_checkpoints"));
    last_checkpoint_step_ = step_;
    log_->file_only("checkpoint: " + dir.string());
  }

  nlohmann::ordered_json make_summary(const RunOutcome& out, double wall) {
    nlohmann::ordered_json s;
    s["task"] = cfg_.get_string("task");
    s["name"] = cfg_.get_string("name");
    s["status"] = out.status;
    if (!out.error.empty()) s["error"] = out.error;
    s["steps"] = step_;
    s["total_steps"] = total_steps_;
    s["final_train_loss"] = std::isfinite(last_logged_loss_) ? nlohmann::ordered_json(last_logged_loss_) : nlohmann::ordered_json();
    std::vector<std::string> headline = task_->headline_metrics();
    s["headline_metrics"] = headline;
    for (const auto& name : headline) {
      auto it = last_eval_.metrics.find(name);
      s[name] = it != last_eval_.metrics.end() && std::isfinite(it->second) ? nlohmann::ordered_json(it->second)
                                                                           : nlohmann::ordered_json();
    }
    nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
    for (const auto& [k, v] : last_eval_.metrics) metrics[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
    s["eval_step"] = have_eval_ ? step_ : -1;
    s["metrics"] = metrics;
    nlohmann::ordered_json mi = nlohmann::ordered_json::object();
    for (const auto& r : last_eval_.routing) {
      int64_t experts = static_cast<int64_t>(r.expert_counts.size());
      if (experts == 0 || r.label_expert_counts.empty()) continue;
      mi["layer_" + std::to_string(r.layer)] =
          mutual_information_bits(r.label_expert_counts, static_cast<int64_t>(r.label_expert_counts.size()) / experts, experts);
    }
    s["label_mi_bits"] = mi;
    s["routing_labels"] = task_->label_names();
    s["label_kind"] = task_->label_kind();
    s["seed"] = cfg_.get_int("seed");
    s["threads"] = threads_;
    s["wall_time_s"] = wall;
    return s;
  }

  Config cfg_;
  TrainerOptions opt_;
  std::unique_ptr<RunLog> log_;
  std::unique_ptr<Task> task_;
  NamedTensors params_;
  std::vector<Tensor> param_list_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  optim::LrSchedule schedule_;
  std::unique_ptr<io::MetricsWriter> metrics_;
  Progress* progress_ = nullptr;
  IntervalStats interval_;
  EvalResult last_eval_;
  bool have_eval_ = false;
  int threads_ = 1;
  std::unique_ptr<MicroBatchRunner> micro_batches_;
  int64_t step_ = 0, total_steps_ = 0, log_every_ = 1, eval_every_ = 0, checkpoint_every_ = 0;
  int64_t last_eval_step_ = -1, last_checkpoint_step_ = -1, sigint_at_step_ = -1;
  double last_loss_ = NAN, last_logged_loss_ = NAN;
};

}  // namespace

RunOutcome run_training(const Config& cfg, const TrainerOptions& options) {
  // Resuming: what is trained must not change; only how long and how often may (resume_may_change).
  fs::path saved = options.run_dir / "config.toml";
  if (options.resume && fs::exists(saved)) {
    auto schema = make_task_schema(cfg.get_string("task"));
    Config before = load_config(*schema, saved.string());
    std::vector<std::string> problems;
    for (const auto& key : config_differences(before, cfg))
      if (!resume_may_change(key))
        problems.push_back(cfg.origin(key).str() + ": " + key + " = " + (cfg.has(key) ? cfg.value_text(key) : "(unset)") +
                           " differs from the run being resumed (" + saved.string() + ": " +
                           (before.has(key) ? before.value_text(key) : "(unset)") +
                           "); only train.steps, train.epochs, train.eval_every, train.checkpoint_every, "
                           "train.keep_checkpoints, train.log_every, train.progress_every_s and notes.* may change");
    if (!problems.empty()) throw ConfigError(problems);
  }
  Trainer trainer(cfg, options);
  return trainer.run();
}

}  // namespace moelab::experiments
