#pragma once
// Learning-rate schedules (constant, cosine, linear, each with linear warmup): lr_at(step) for the
// 0-based index of the step about to run. Formulas: docs/nn.md (Learning-rate schedules).
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
