#include "experiments/lib/checkpoint.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/nn/tensor_file.h"
#include "core/util/check.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

namespace {
constexpr const char* kDone = "DONE";

// step_000001000 -> 1000; -1 for anything else.
int64_t parse_step_dir(const std::string& name) {
  const std::string prefix = "step_";
  if (name.size() <= prefix.size() || name.rfind(prefix, 0) != 0) return -1;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

void maybe_kill_for_test(int64_t step) {
  const char* env = std::getenv("MOELAB_TEST_KILL_IN_CHECKPOINT");
  if (env && std::to_string(step) == env) {
    std::fflush(nullptr);
    ::kill(::getpid(), SIGKILL);
  }
}

nn::NamedTensors read_with_metadata(const fs::path& path, std::map<std::string, std::string>& metadata) {
  io::SafetensorsFile f = io::read_safetensors(path.string());
  metadata = f.metadata();
  nn::NamedTensors out;
  for (const auto& t : f.tensors()) out.emplace_back(t.name, nn::to_tensor(t, path.string()));
  return out;
}
}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%09lld", static_cast<long long>(step));
  return buf;
}

std::vector<CheckpointInfo> list_checkpoints(const fs::path& run_dir) {
  std::vector<CheckpointInfo> out;
  fs::path ckpt = run_dir / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ckpt, ec)) return out;
  for (const auto& entry : fs::directory_iterator(ckpt)) {
    if (!entry.is_directory()) continue;
    int64_t step = parse_step_dir(entry.path().filename().string());
    if (step < 0 || !fs::exists(entry.path() / kDone)) continue;
    out.push_back({step, entry.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointInfo> latest_checkpoint(const fs::path& run_dir) {
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

CheckpointInfo checkpoint_or_latest(const fs::path& run_dir, std::optional<int64_t> step) {
  if (step) return find_checkpoint(run_dir, *step);
  auto latest = latest_checkpoint(run_dir);
  MOELAB_CHECK(latest, run_dir.string() << " has no complete checkpoint");
  return *latest;
}

CheckpointInfo find_checkpoint(const fs::path& run_dir, int64_t step) {
  auto all = list_checkpoints(run_dir);
  std::string have;
  for (const auto& c : all) {
    if (c.step == step) return c;
    have += " " + std::to_string(c.step);
  }
  MOELAB_FAIL(run_dir.string() << ": no complete checkpoint for step " << step << " (available:"
                               << (have.empty() ? " none" : have) << ")");
}

// What a failed or damaged checkpoint leaves to resume from, for error messages.
std::string previous_checkpoint_text(const fs::path& run_dir, int64_t before_step) {
  std::optional<CheckpointInfo> prev;
  for (const auto& c : list_checkpoints(run_dir))
    if (c.step < before_step) prev = c;
  if (!prev) return "there is no earlier complete checkpoint";
  return "the newest earlier complete checkpoint is step " + std::to_string(prev->step) + " (" + prev->dir.string() + ")";
}

fs::path write_checkpoint(const fs::path& run_dir, const CheckpointData& data) {
  fs::path ckpt = run_dir / "ckpt";
  fs::create_directories(ckpt);
  fs::path final_dir = ckpt / checkpoint_dir_name(data.step);
  fs::path tmp_dir = ckpt / (checkpoint_dir_name(data.step) + ".tmp");
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  try {
    nn::save_tensors((tmp_dir / "model.safetensors").string(), data.model, data.model_metadata);
    maybe_kill_for_test(data.step);
    nn::save_tensors((tmp_dir / "state.safetensors").string(), data.state, data.state_metadata);
  } catch (const std::exception& e) {
    // A full disk or I/O error: drop the partial directory; complete checkpoints stay as they were.
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    MOELAB_FAIL("the checkpoint of step " << data.step << " could not be written: " << e.what() << "; "
                                          << previous_checkpoint_text(run_dir, data.step)
                                          << " and is intact (continue from it with --resume)");
  }
  // A previous incomplete attempt at the same step (no DONE) is replaced.
  fs::remove_all(final_dir);
  fs::rename(tmp_dir, final_dir);
  io::write_file_atomic((final_dir / kDone).string(), "step " + std::to_string(data.step) + "\n");
  return final_dir;
}

CheckpointData read_checkpoint(const CheckpointInfo& info) {
  CheckpointData d;
  d.step = info.step;
  try {
    d.model = read_with_metadata(info.dir / "model.safetensors", d.model_metadata);
    d.state = read_with_metadata(info.dir / "state.safetensors", d.state_metadata);
  } catch (const io::SafetensorsError& e) {
    // Damaged bytes (checksum mismatch) or a damaged header: say what else there is to resume from.
    const fs::path run_dir = info.dir.parent_path().parent_path();
    MOELAB_FAIL("the checkpoint of step " << info.step << " is damaged: " << e.what() << "; "
                                          << previous_checkpoint_text(run_dir, info.step)
                                          << " (remove " << info.dir.string() << " to resume from it)");
  }
  return d;
}

void prune_checkpoints(const fs::path& run_dir, int64_t keep) {
  fs::path ckpt = run_dir / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ckpt, ec)) return;
  auto complete = list_checkpoints(run_dir);
  std::vector<fs::path> remove;
  for (const auto& entry : fs::directory_iterator(ckpt)) {
    if (!entry.is_directory()) continue;
    bool is_complete = std::any_of(complete.begin(), complete.end(), [&](const auto& c) { return c.dir == entry.path(); });
    if (!is_complete) remove.push_back(entry.path());
  }
  if (keep > 0 && static_cast<int64_t>(complete.size()) > keep)
    for (size_t i = 0; i + keep < complete.size(); ++i) remove.push_back(complete[i].dir);
  for (const auto& p : remove) fs::remove_all(p);
}

void load_model_state(nn::Module& model, const CheckpointData& d, const CheckpointInfo& info) {
  std::vector<std::string> problems;
  const nn::NamedTensors state = model.state_dict();
  for (const auto& [name, t] : state) {
    const Tensor* saved = nn::find_tensor(d.model, name);
    Tensor dst = t;
    if (!saved) problems.push_back("missing " + name);
    else if (!(saved->shape() == t.shape()))
      problems.push_back(name + " has shape " + saved->shape().str() + ", the model " + t.shape().str());
    else dst.copy_(*saved);
  }
  if (d.model.size() != state.size())
    problems.push_back("the checkpoint holds " + std::to_string(d.model.size()) + " tensors, the model " +
                       std::to_string(state.size()));
  if (problems.empty()) return;
  std::string msg = info.dir.string() + "/model.safetensors does not match the model:";
  for (const auto& p : problems) msg += " " + p + ";";
  MOELAB_FAIL(msg);
}

}  // namespace moelab::experiments
