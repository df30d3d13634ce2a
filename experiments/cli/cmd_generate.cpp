// `moelab generate RUN_DIR --prompt TEXT [--max-tokens N --temperature T --top-k K --seed S --checkpoint STEP]`:
// streams a continuation of the prompt from an `lm` run's checkpoint, using the key/value cache.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "experiments/cli/command.h"
#include "experiments/lib/checkpoint.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/tasks/lm_support.h"
#include "text/model/generate.h"

using namespace moelab;

namespace {
struct GenerateArgs {
  std::string run_dir, prompt;
  int64_t max_tokens = 200, top_k = 40, step = -1;
  double temperature = 0.8;
  uint64_t seed = 0;
};
GenerateArgs g;

// The length of `text` without a trailing incomplete character (shown as U+FFFD while its bytes arrive).
size_t complete_prefix(const std::string& text) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  size_t n = text.size();
  while (n >= 3 && text.compare(n - 3, 3, kReplacement) == 0) n -= 3;
  return n;
}

void generate_command() {
  namespace fs = std::filesystem;
  using namespace moelab::experiments;
  const fs::path run_dir = g.run_dir, config_path = run_dir / "config.toml";
  MOELAB_CHECK(fs::exists(config_path), g.run_dir << " has no config.toml: is it a moelab run directory?");
  Config cfg = load_run_config(config_path.string(), {});
  MOELAB_CHECK(cfg.get_string("task") == "lm", g.run_dir << " is a run of task '" << cfg.get_string("task")
                                                         << "'; moelab generate needs a task = \"lm\" run");
  const fs::path tok_path = run_tokenizer_path(run_dir);
  std::ifstream tok_file(tok_path, std::ios::binary);
  MOELAB_CHECK(tok_file, tok_path.string() << " is missing: the run's tokenizer is written when task lm starts");
  std::stringstream bytes;
  bytes << tok_file.rdbuf();
  text::Tokenizer tokenizer(bytes.str());

  const CheckpointInfo info =
      checkpoint_or_latest(run_dir, g.step >= 0 ? std::optional<int64_t>(g.step) : std::nullopt);
  auto model = make_lm_model(cfg, tokenizer.vocab_size(), static_cast<uint64_t>(cfg.get_int("seed")));
  load_model_state(*model, read_checkpoint(info), info);
  model->eval();

  std::vector<int32_t> prompt = {tokenizer.eos_id()};  // training documents start after </s>
  const std::vector<int32_t> ids = tokenizer.encode(g.prompt);
  prompt.insert(prompt.end(), ids.begin(), ids.end());
  text::SamplingOptions so;
  so.max_tokens = g.max_tokens;
  so.temperature = g.temperature;
  so.top_k = g.top_k;
  so.seed = g.seed;
  so.stop_id = tokenizer.eos_id();
  std::cerr << "checkpoint " << info.dir.string() << " (step " << info.step << "), " << ids.size()
            << " prompt tokens\n";
  std::cout << g.prompt << std::flush;
  // Decode everything drawn so far and print what is new, holding back a character whose bytes are incomplete.
  std::vector<int32_t> drawn;
  size_t printed = 0;
  auto stream_out = [&](bool final) {
    const std::string text = tokenizer.decode(drawn);
    const size_t upto = final ? text.size() : complete_prefix(text);
    if (upto > printed) {
      std::cout << text.substr(printed, upto - printed) << std::flush;
      printed = upto;
    }
  };
  text::generate(*model, prompt, so, [&](int32_t id) {
    drawn.push_back(id);
    stream_out(false);
  });
  stream_out(true);
  std::cout << "\n";
}

cli::Registration reg{
    "generate", "Stream text from an lm run's checkpoint (KV cache; deterministic for a seed)", [](CLI::App& sub) {
      sub.add_option("run_dir", g.run_dir, "run directory of task lm")->required()->check(CLI::ExistingDirectory);
      sub.add_option("--prompt", g.prompt, "text to continue (may be empty)")->required();
      sub.add_option("--max-tokens", g.max_tokens, "new tokens at most (stops early at the end of a document)")
          ->check(CLI::PositiveNumber);
      sub.add_option("--temperature", g.temperature, "softmax temperature (0: greedy)")->check(CLI::NonNegativeNumber);
      sub.add_option("--top-k", g.top_k, "sample among the k most likely tokens (0: all)")->check(CLI::NonNegativeNumber);
      sub.add_option("--seed", g.seed, "sampling seed");
      sub.add_option("--checkpoint", g.step, "the step of the checkpoint (default: the newest complete one)");
      sub.callback([] { generate_command(); });
    }};
}  // namespace
