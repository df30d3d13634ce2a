// One optimizer step: micro-batches, non-finite guard, clipping, update, after-step hooks.
#include "experiments/lib/training_step.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/optim/clip.h"
#include "experiments/lib/distributed_training.h"

namespace moelab::experiments {

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.5g", v);
  return b;
}

bool has_non_finite(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return false;
  for (double v : t.to(DType::f64).to_vector<double>())
    if (!std::isfinite(v)) return true;
  return false;
}

// `*` matches any run of characters (dots included).
bool glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

struct ParamGroup {
  std::string pattern;
  double lr_scale = 1.0, weight_decay = -1.0;
};

// "PATTERN: lr_scale=X weight_decay=Y" (either setting may be left out).
ParamGroup parse_group(const std::string& text) {
  const size_t colon = text.find(':');
  MOELAB_CHECK(colon != std::string::npos && colon > 0,
               "'" << text << "' is not 'PATTERN: lr_scale=X weight_decay=Y'");
  ParamGroup g;
  g.pattern = text.substr(0, colon);
  while (!g.pattern.empty() && g.pattern.back() == ' ') g.pattern.pop_back();
  std::istringstream rest(text.substr(colon + 1));
  std::string item;
  while (rest >> item) {
    const size_t eq = item.find('=');
    MOELAB_CHECK(eq != std::string::npos, "'" << item << "' in '" << text << "' is not key=value");
    const std::string key = item.substr(0, eq);
    double v = 0;
    try {
      v = std::stod(item.substr(eq + 1));
    } catch (const std::exception&) {
      MOELAB_FAIL("'" << item << "' in '" << text << "' does not hold a number");
    }
    MOELAB_CHECK(v >= 0, "'" << item << "' in '" << text << "' must be >= 0");
    if (key == "lr_scale") g.lr_scale = v;
    else if (key == "weight_decay") g.weight_decay = v;
    else MOELAB_FAIL("'" << key << "' in '" << text << "' is not lr_scale or weight_decay");
  }
  return g;
}

}  // namespace

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& cfg, const NamedTensors& params) {
  std::unique_ptr<optim::Optimizer> opt;
  const std::string name = cfg.get_string("optim.name");
  const double lr = cfg.get_float("optim.lr"), wd = cfg.get_float("optim.weight_decay");
  if (name == "sgd")
    opt = std::make_unique<optim::SGD>(params, optim::SgdOptions{lr, cfg.get_float("optim.momentum"), wd, false});
  else if (name == "rmsprop")
    opt = std::make_unique<optim::RMSprop>(
        params, optim::RmspropOptions{lr, cfg.get_float("optim.alpha"), cfg.get_float("optim.eps"), wd,
                                      cfg.get_bool("optim.centered")});
  else
    opt = std::make_unique<optim::AdamW>(
        params, optim::AdamWOptions{lr, cfg.get_float("optim.beta1"), cfg.get_float("optim.beta2"),
                                    cfg.get_float("optim.eps"), wd, cfg.get_bool("optim.no_decay_for_vectors")});
  // Groups in order; a parameter takes the first group whose pattern matches its name.
  std::vector<std::string> problems;
  std::vector<bool> assigned(params.size(), false);
  for (const auto& text : cfg.get_string_list("optim.param_groups")) {
    ParamGroup g;
    try {
      g = parse_group(text);
    } catch (const Error& e) {
      problems.push_back(cfg.origin("optim.param_groups").str() + ": optim.param_groups: " + e.message());
      continue;
    }
    bool any = false;
    for (size_t i = 0; i < params.size(); ++i)
      if (glob_match(g.pattern, params[i].first)) {
        any = true;
        if (assigned[i]) continue;
        assigned[i] = true;
        opt->set_param_group(params[i].first, g.lr_scale, g.weight_decay);
      }
    if (!any)
      problems.push_back(cfg.origin("optim.param_groups").str() + ": optim.param_groups: '" + g.pattern +
                         "' matches no parameter (names look like '" + (params.empty() ? "" : params.front().first) + "')");
  }
  if (!problems.empty()) throw ConfigError(problems);
  return opt;
}

TrainingStep::TrainingStep(Task& task, nn::Module& model, const Config& cfg, uint64_t seed, Device device)
    : task_(task),
      model_(model),
      params_(model.named_parameters()),
      optimizer_(make_optimizer(cfg, params_)),
      micro_batches_(task, model, cfg, seed, device),
      clip_(cfg.get_float("optim.clip_grad_norm")),
      skip_non_finite_(cfg.get_string("train.on_non_finite") == "skip") {
  for (const auto& [name, p] : params_) param_list_.push_back(p);
}

void TrainingStep::set_distributed(const DistributedTraining* dist) {
  dist_ = dist && dist->active() ? dist : nullptr;
  if (dist_) micro_batches_.set_shard(dist_->rank(), dist_->size());
}

std::string TrainingStep::non_finite(const StepOutcome& o, double norm, int64_t step) const {
  std::string what;
  for (const auto& m : o.micro) {
    if (!std::isfinite(m.loss)) what = "loss (" + num(m.loss) + ")";
    for (size_t i = 0; what.empty() && i < m.aux.size(); ++i)
      if (!std::isfinite(m.aux_values[i])) what = "auxiliary loss " + m.aux[i].full_name() + " (" + num(m.aux_values[i]) + ")";
    if (!what.empty()) break;
  }
  if (what.empty() && std::isfinite(norm)) return "";
  // A non-finite loss makes every gradient non-finite: then only a parameter can be the cause; with finite
  // losses, the first non-finite gradient is.
  const bool gradient = what.empty();
  if (gradient) what = "gradient norm (" + num(norm) + ")";
  std::string culprit;
  for (const auto& [name, p] : params_) {
    if (has_non_finite(p)) culprit = "parameter " + name;
    else if (gradient && has_non_finite(p.grad())) culprit = "gradient of " + name;
    if (!culprit.empty()) break;
  }
  return "step " + std::to_string(step + 1) + ": non-finite " + what + "; first offending tensor: " +
         (culprit.empty() ? what.substr(0, what.find(' ')) : culprit);
}

StepOutcome TrainingStep::run(int64_t step, double lr) {
  StepOutcome o;
  optimizer_->set_lr(lr);
  o.micro = micro_batches_.run(step);
  if (dist_) {
    const auto t_exchange = std::chrono::steady_clock::now();
    o.all_reduce_bytes = dist_->finish_backward(o.micro, param_list_, step);
    o.exchange_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_exchange).count();
  }
  for (const auto& m : o.micro) o.routing.merge(m.routing);
  o.grad_norm = clip_ > 0 ? optim::clip_grad_norm(param_list_, clip_) : optim::global_grad_norm(param_list_);
  if (std::string bad = non_finite(o, o.grad_norm, step); !bad.empty()) {
    if (!skip_non_finite_) throw NonFiniteError(bad);
    // Skip: the step's gradients are dropped and nothing else changes.
    optimizer_->zero_grad();
    o.skipped = true;
    o.skip_reason = bad;
    return o;
  }
  const auto t0 = std::chrono::steady_clock::now();
  {
    NoGradGuard no_grad;
    optimizer_->step();
  }
  optimizer_->zero_grad();
  model_.after_optimizer_step_all({step + 1, &o.routing});
  task_.after_optimizer_step(step);
  o.optimizer_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

}  // namespace moelab::experiments
