#pragma once
// Learning-rate schedules: lr_at(step) for the 0-based index of the step about to run.
//   constant: base_lr after an optional linear warmup
//   cosine:   linear warmup to base_lr, then cosine decay to min_lr at total_steps (min_lr after)
//   linear:   linear warmup, then linear decay to min_lr at total_steps (min_lr after)
// Warmup is lr = base_lr * (step + 1) / warmup_steps for step < warmup_steps, so the first step is not 0.
#include <cstdint>
#include <string_view>

namespace moelab::optim {

enum class ScheduleKind : uint8_t { constant, cosine, linear };
// "constant", "cosine", "linear"; throws listing the valid names.
ScheduleKind parse_schedule_kind(std::string_view name);
const char* schedule_kind_name(ScheduleKind k);

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 1e-3;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // needed by cosine and linear (> warmup_steps)

  double lr_at(int64_t step) const;
  void validate() const;  // throws on impossible settings
};

}  // namespace moelab::optim
