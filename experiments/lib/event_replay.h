#pragma once
// Resuming a run: TensorBoard event files may hold scalars logged after the checkpoint the run resumes
// from (the killed run went on for a while). They are rewritten into one file that keeps only the
// events up to that step, so that the resumed run's new events continue without duplicates.
#include <cstdint>
#include <filesystem>

namespace moelab::experiments {

// Keeps the scalar events with step <= max_step of every events.out.tfevents.* file in run_dir
// (a truncated last record is dropped), in one file with their original wall times. Returns how many
// events were kept.
int64_t replay_events_up_to(const std::filesystem::path& run_dir, int64_t max_step);

}  // namespace moelab::experiments
