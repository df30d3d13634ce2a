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
#include "core/optim/schedule.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/event_replay.h"
#include "experiments/lib/interval_stats.h"
#include "experiments/lib/report.h"
#include "experiments/lib/training_step.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/run_dir.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

namespace {

// Ctrl-C or SIGTERM: the first asks the loop to checkpoint and stop; a second one leaves at once.
std::atomic<int> g_interrupts{0};
std::atomic<int> g_signal{0};
extern "C" void on_interrupt(int sig) {
  g_signal = sig;
  if (g_interrupts.fetch_add(1) >= 1) ::_exit(128 + sig);
}
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupts = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
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
      InterruptScope interrupts;
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
          if (step_ % log_every_ == 0 || step_ == total_steps_) log_interval();
          if (eval_every_ > 0 && step_ % eval_every_ == 0) evaluate(true);
          if (checkpoint_every_ > 0 && step_ % checkpoint_every_ == 0) checkpoint();
          progress.update(step_, {{"loss", last_loss_}, {"lr", training_->optimizer().lr()}});
          if (sigint_at_step_ == step_) ::raise(SIGINT);
          if (g_interrupts > 0 && step_ < total_steps_) {
            if (last_checkpoint_step_ != step_) checkpoint();
            out.status = "interrupted";
            out.error = std::string("interrupted by ") + (g_signal == SIGTERM ? "SIGTERM" : "Ctrl-C") + " at step " +
                        std::to_string(step_) + "; continue with --resume";
            break;
          }
        }
        if (out.status == "completed") {
          if (last_eval_step_ != step_) evaluate(true);
          else if (!have_eval_) evaluate(false);  // resumed after the final evaluation: for the summary
          if (last_checkpoint_step_ != step_) checkpoint();
        }
      } catch (const NonFiniteError& e) {
        out.status = "failed";
        out.error = e.what();
      } catch (const ConfigError&) {
        throw;
      } catch (const std::exception& e) {
        out.status = "failed";
        // A failed checkpoint happens after its step completed; anything else during the next one.
        out.error = (in_checkpoint_ ? "after step " + std::to_string(step_) : "step " + std::to_string(step_ + 1)) +
                    ": " + e.what();
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
    check_workers_supported(cfg_, device);
    device_ = device;
    auto ckpt = opt_.resume && fs::exists(opt_.run_dir) ? latest_checkpoint(opt_.run_dir) : std::nullopt;
    if (!opt_.resume && (fs::exists(opt_.run_dir / "metrics.jsonl") || fs::exists(opt_.run_dir / "ckpt")))
      throw ConfigError({opt_.run_dir.string() + " already holds a run; pass --resume to continue it or choose another --run-dir"});

    // Tests interrupt a run at an exact step (nothing may depend on timing): MOELAB_TEST_SIGINT_AT_STEP=N.
    if (const char* env = std::getenv("MOELAB_TEST_SIGINT_AT_STEP")) sigint_at_step_ = std::atoll(env);
    int64_t threads = cfg_.get_int("train.threads");
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
    threads_ = omp_get_max_threads();

    // Task, model and optimizer before any file: their config errors (parameter groups, budgets, data
    // sizes) leave nothing behind. Lines the task logs meanwhile are held until log.txt exists.
    task_ = find_task(cfg_.get_string("task")).make();
    TaskContext ctx;
    ctx.device = device;
    ctx.seed = static_cast<uint64_t>(cfg_.get_int("seed"));
    ctx.run_dir = opt_.run_dir.string();
    ctx.log = [this](const std::string& line) {
      if (log_) say(line);
      else early_lines_.push_back(line);
    };
    task_->build(cfg_, ctx);
    model_ = task_->make_model();
    model_->to(device);
    model_->train(true);
    task_->set_model(model_);
    seed_ = ctx.seed;
    training_ = std::make_unique<TrainingStep>(*task_, *model_, cfg_, seed_, device);
    total_steps_ = budget_steps(cfg_, *task_);

    fs::create_directories(opt_.run_dir);
    write_run_files(opt_.run_dir, cfg_, opt_.argv, opt_.overrides, opt_.resume && fs::exists(opt_.run_dir / "cmdline.txt"));
    log_ = std::make_unique<RunLog>(opt_.run_dir / "log.txt");
    if (device.is_cuda())
      say("device: " + cuda_device_summary(device.index) + (cuda_allow_tf32() ? " (TF32 matmuls allowed)" : ""));
    for (const auto& line : early_lines_) say(line);
    early_lines_.clear();
    log_every_ = cfg_.get_int("train.log_every");
    eval_every_ = eval_every_steps(cfg_, *task_);
    checkpoint_every_ = cfg_.get_int("train.checkpoint_every");

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

    const int64_t num_params = model_->num_parameters();
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
    load_model_state(*model_, d, info);
    NamedTensors opt_state;
    TaskState task_state;
    for (const auto& [name, t] : d.state) {
      if (name.rfind("optim.", 0) == 0) opt_state.emplace_back(name.substr(6), t);
      else if (name.rfind("task.", 0) == 0) task_state.tensors.emplace_back(name.substr(5), t);
    }
    for (const auto& [k, v] : d.state_metadata)
      if (k.rfind("task.", 0) == 0) task_state.values[k.substr(5)] = v;
    training_->optimizer().load_state_dict(opt_state);
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

  void train_one_step() {
    const double lr = schedule_.lr_at(step_);
    StepOutcome o = training_->run(step_, lr);
    double loss_sum = 0;
    for (const MicroBatchOutcome& m : o.micro) {
      for (size_t i = 0; i < m.aux.size(); ++i) {
        if (m.aux[i].module.empty()) interval_.add_scalar("train/" + m.aux[i].name, m.aux_values[i]);
        else interval_.add_layer_scalar("moe/" + m.aux[i].name, m.aux[i].module, m.aux_values[i]);
      }
      loss_sum += m.loss;
      interval_.add_scalar("train/loss", m.loss);
      for (const auto& [k, v] : m.result.metrics) interval_.add_scalar("train/" + k, v);
    }
    if (o.skipped) {
      say("warning: " + o.skip_reason + "; the step was skipped (train.on_non_finite = \"skip\")");
      interval_.add_scalar("train/skipped_steps", 1.0);
      return;
    }
    interval_.add_routing(o.routing);
    interval_.add_scalar("train/grad_norm", o.grad_norm);
    interval_.add_scalar("train/lr", lr);
    last_loss_ = loss_sum / training_->grad_accum();
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
    const bool final = step_ >= total_steps_;
    EvalContext ec(*model_, step_, final, nn::evaluation_draw_key(seed_, step_), device_);
    EvalResult e;
    {
      NoGradGuard no_grad;
      model_->eval();
      e = task_->evaluate(ec);
      model_->train(true);
    }
    last_eval_ = e;
    last_eval_routing_ = ec.routing;
    have_eval_ = true;
    if (!log_it) return;
    last_eval_step_ = step_;
    io::MetricsRecord rec(step_);
    std::string line = "eval step " + std::to_string(step_) + ":";
    for (const auto& [k, v] : e.metrics) {
      rec.scalar(k, v);
      line += " " + k + " " + num(v);
    }
    const std::vector<std::string> labels = task_->label_names();
    const int64_t rows = static_cast<int64_t>(labels.size());
    std::vector<std::pair<std::string, double>> mi;
    nlohmann::ordered_json matrices = nlohmann::ordered_json::object(), loads = nlohmann::ordered_json::object();
    for (const auto& [path, t] : ec.routing.layers()) {
      loads[path] = t.load().fraction;
      write_routing_files(path, t, ec.routing.record(path), labels);
      if (rows == 0) continue;
      const std::vector<double> m = t.label_matrix(rows);
      const double bits = moe::mutual_information_bits(m, rows, t.num_experts);
      mi.emplace_back(path, bits);
      line += " mi/" + path + " " + num(bits) + " bits";
      nlohmann::ordered_json matrix = nlohmann::ordered_json::array();
      for (int64_t i = 0; i < rows; ++i)
        matrix.push_back(std::vector<double>(m.begin() + i * t.num_experts, m.begin() + (i + 1) * t.num_experts));
      matrices[path] = matrix;
    }
    if (!mi.empty()) rec.per_layer("val/label_mi_bits", mi);
    if (!ec.routing.empty()) rec.json("val/load", loads);
    if (!matrices.empty()) rec.json("val/labels_experts", matrices);
    metrics_->write(rec);
    say(line);
  }

  // routing/labels_experts_<path>.csv (with labels) and routing/tokens_<path>.csv (the layer's latest
  // evaluation forward, its first tokens).
  void write_routing_files(const std::string& path, const moe::RoutingTally& t, const moe::RoutingRecord* record,
                           const std::vector<std::string>& labels) {
    const fs::path dir = opt_.run_dir / "routing";
    fs::create_directories(dir);
    const int64_t rows = static_cast<int64_t>(labels.size());
    if (rows > 0)
      io::write_file_atomic((dir / ("labels_experts_" + path + ".csv")).string(),
                            moe::labels_experts_csv(t.label_matrix(rows), rows, t.num_experts, labels));
    if (record) io::write_file_atomic((dir / ("tokens_" + path + ".csv")).string(), moe::token_records_csv(*record, 256));
  }

  void checkpoint() {
    in_checkpoint_ = true;
    metrics_->flush();  // everything logged up to a checkpoint is on disk before it counts as complete
    CheckpointData d;
    d.step = step_;
    for (const auto& [name, t] : model_->state_dict()) d.model.emplace_back(name, t);
    d.model_metadata = {{"step", std::to_string(step_)}, {"task", cfg_.get_string("task")}, {"config", cfg_.to_toml()}};
    for (auto& [name, t] : training_->optimizer().state_dict()) d.state.emplace_back("optim." + name, t);
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
    in_checkpoint_ = false;
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
    const int64_t rows = static_cast<int64_t>(task_->label_names().size());
    if (rows > 0)
      for (const auto& [path, t] : last_eval_routing_.layers())
        mi[path] = moe::mutual_information_bits(t.label_matrix(rows), rows, t.num_experts);
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
  std::vector<std::string> early_lines_;  // logged by the task before log.txt existed
  bool in_checkpoint_ = false;           // a failure now is the checkpoint's, after step_ completed
  std::unique_ptr<Task> task_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<TrainingStep> training_;
  Device device_ = Device::cpu();
  uint64_t seed_ = 0;
  optim::LrSchedule schedule_;
  std::unique_ptr<io::MetricsWriter> metrics_;
  Progress* progress_ = nullptr;
  IntervalStats interval_;
  EvalResult last_eval_;
  moe::RoutingLog last_eval_routing_;
  bool have_eval_ = false;
  int threads_ = 1;
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
