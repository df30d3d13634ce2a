// Learning-rate schedules.
#include "core/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/util/check.h"

namespace moelab::optim {

ScheduleKind parse_schedule_kind(std::string_view name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "linear") return ScheduleKind::linear;
  MOELAB_FAIL("unknown lr schedule '" << name << "'; use constant, cosine or linear");
}

const char* schedule_kind_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::linear: return "linear";
  }
  return "?";
}

void LrSchedule::validate() const {
  MOELAB_CHECK(base_lr >= 0 && min_lr >= 0, "lr schedule: base_lr and min_lr must be >= 0");
  MOELAB_CHECK(warmup_steps >= 0, "lr schedule: warmup_steps must be >= 0, got " << warmup_steps);
  if (kind != ScheduleKind::constant)
    MOELAB_CHECK(total_steps > warmup_steps, "lr schedule '" << schedule_kind_name(kind) << "': total_steps ("
                                                             << total_steps << ") must exceed warmup_steps ("
                                                             << warmup_steps << ")");
}

double LrSchedule::lr_at(int64_t step) const {
  validate();
  step = std::max<int64_t>(step, 0);
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == ScheduleKind::constant) return base_lr;
  if (step >= total_steps) return min_lr;
  double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  double factor = kind == ScheduleKind::cosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) : 1.0 - progress;
  return min_lr + (base_lr - min_lr) * factor;
}

}  // namespace moelab::optim
