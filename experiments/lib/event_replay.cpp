#include "experiments/lib/event_replay.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/io/tfevents.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

int64_t replay_events_up_to(const fs::path& run_dir, int64_t max_step) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return 0;
  for (const auto& entry : fs::directory_iterator(run_dir))
    if (entry.is_regular_file() && entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      files.push_back(entry.path());
  if (files.empty()) return 0;
  std::sort(files.begin(), files.end());
  std::vector<io::Event> kept;
  for (const auto& f : files) {
    io::EventFileContents contents = io::read_event_file(f.string(), /*allow_truncated_tail=*/true);
    for (auto& e : contents.events)
      if (e.file_version.empty() && !e.scalars.empty() && e.step <= max_step) kept.push_back(std::move(e));
  }
  for (const auto& f : files) fs::remove(f);
  if (kept.empty()) return 0;
  double now = kept.front().wall_time;
  io::EventWriterOptions options;
  options.flush_interval_s = 1e9;
  options.clock = [&now] { return now; };
  io::EventWriter writer(run_dir.string(), options);
  for (const auto& e : kept) {
    now = e.wall_time;
    std::vector<std::pair<std::string, double>> values;
    for (const auto& s : e.scalars) values.emplace_back(s.tag, s.value);
    writer.add_scalars(e.step, values);
  }
  writer.close();
  return static_cast<int64_t>(kept.size());
}

}  // namespace moelab::experiments
