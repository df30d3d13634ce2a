#include "experiments/lib/task.h"

#include <sstream>

#include "core/io/text_util.h"

namespace moelab::experiments {

std::vector<TaskInfo>& task_table() {
  static std::vector<TaskInfo> table;
  return table;
}

const TaskInfo& find_task(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& t : task_table()) {
    if (t.name == name) return t;
    names.push_back(t.name);
  }
  std::ostringstream os;
  os << "unknown task \"" << name << "\"";
  if (auto near = io::nearest_match(name, names)) os << " (did you mean \"" << *near << "\"?)";
  os << "; registered tasks:";
  for (const auto& n : names) os << " " << n;
  throw ConfigError({os.str()});
}

void TaskState::put_rng(const std::string& name, const RngStream& rng) {
  values[name + ".key"] = std::to_string(rng.key());
  values[name + ".counter"] = std::to_string(rng.counter());
}

int64_t TaskState::get_int(const std::string& name) const { return std::stoll(get_string(name)); }

std::string TaskState::get_string(const std::string& name) const {
  auto it = values.find(name);
  MOELAB_CHECK(it != values.end(), "checkpoint task state has no value \"" << name << "\"");
  return it->second;
}

RngStream TaskState::get_rng(const std::string& name) const {
  return RngStream::from_state(std::stoull(get_string(name + ".key")), std::stoull(get_string(name + ".counter")));
}

Tensor TaskState::get_tensor(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  MOELAB_FAIL("checkpoint task state has no tensor \"" << name << "\"");
}

void TaskState::load_tensor_into(const std::string& name, Tensor& dst) const {
  Tensor src = get_tensor(name);
  MOELAB_CHECK(src.shape() == dst.shape(), "checkpoint tensor \"" << name << "\" has shape " << src.shape().str()
                                                                  << ", the model expects " << dst.shape().str());
  dst.copy_(src);
}

}  // namespace moelab::experiments
