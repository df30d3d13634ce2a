// `moelab retrieve RUN_DIR --text "a red bag" | --image FILE [--split test|heldout] [--top K] [--out PNG]`:
// the top scenes for a caption query, or the top captions for an image, from a trained retrieval run.
#include <iostream>
#include <optional>

#include "experiments/cli/command.h"
#include "experiments/lib/tasks/retrieval_query.h"
#include "vision/data/scene_preview.h"

using namespace moelab;

namespace {
struct RetrieveArgs {
  std::string run_dir, text, image, split = "test", out;
  int64_t top = 5, step = -1;
};
RetrieveArgs g;

void retrieve_command() {
  using namespace moelab::experiments;
  if (g.text.empty() == g.image.empty()) {
    std::cerr << "moelab retrieve: give exactly one of --text and --image\n";
    cli::set_exit_code(cli::kBadUsage);
    return;
  }
  const vision::SceneSplit split = g.split == "heldout" ? vision::SceneSplit::heldout : vision::SceneSplit::test;
  RetrievalSession session(g.run_dir, g.step >= 0 ? std::optional<int64_t>(g.step) : std::nullopt);
  std::cout << "checkpoint step " << session.checkpoint_step() << ", " << g.split << " split\n";
  std::vector<RetrievalHit> hits;
  std::vector<uint8_t> query_image;
  if (!g.text.empty()) {
    const auto unknown = session.task().vocabulary().unknown_words(g.text);
    if (!unknown.empty()) {
      std::cerr << "warning: words outside the caption vocabulary (read as unknown):";
      for (const auto& w : unknown) std::cerr << " '" << w << "'";
      std::cerr << "\n";
    }
    hits = session.scenes_for_text(g.text, split, g.top);
    std::cout << "top " << hits.size() << " scenes for \"" << g.text << "\":\n";
  } else {
    hits = session.captions_for_image(g.image, split, g.top);
    query_image = session.last_query_image();
    std::cout << "top " << hits.size() << " captions for " << g.image << ":\n";
  }
  for (size_t r = 0; r < hits.size(); ++r)
    std::cout << "  " << r + 1 << ". scene " << hits[r].scene << "  score " << hits[r].score << "  \"" << hits[r].caption
              << "\"\n";
  const std::string out = g.out.empty() ? (std::filesystem::path(g.run_dir) / "retrieval" / "query.png").string() : g.out;
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  vision::write_png(session.draw(hits, split, g.text.empty() ? g.image : g.text, query_image), out);
  std::cout << "drawn to " << out << "\n";
}

cli::Registration reg{"retrieve", "Query a trained retrieval run: top scenes for --text, top captions for --image",
                      [](CLI::App& sub) {
                        sub.add_option("run_dir", g.run_dir, "run directory of task 'retrieval'")
                            ->required()
                            ->check(CLI::ExistingDirectory);
                        sub.add_option("--text", g.text, "a caption query: the top scenes are shown");
                        sub.add_option("--image", g.image, "an image file: the top captions are shown")
                            ->check(CLI::ExistingFile);
                        sub.add_option("--split", g.split, "scenes searched: test or heldout")
                            ->check(CLI::IsMember({"test", "heldout"}));
                        sub.add_option("--top", g.top, "hits shown")->check(CLI::Range(1, 100));
                        sub.add_option("--checkpoint", g.step, "the step of the checkpoint (default: the newest)");
                        sub.add_option("--out", g.out, "PNG of the hits (default RUN_DIR/retrieval/query.png)");
                        sub.callback([] { retrieve_command(); });
                      }};
}  // namespace
