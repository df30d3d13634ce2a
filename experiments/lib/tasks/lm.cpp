// Task `lm`: next-token training of the text transformer (text/model) on the multi-domain corpus
// (text/data, text/tokenizer). Documents are tokenized, shuffled each epoch and packed into sequences of
// data.seq_len; the routing labels are each token's domain, so the routing log gives domain x expert counts.
// The headline metric is bits per byte on the test split, overall and per domain. docs/text.md (Task lm).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/io/atomic_file.h"
#include "core/moe/moe_layer.h"
#include "core/ops/ops.h"
#include "experiments/lib/moe_support.h"
#include "experiments/lib/task.h"
#include "experiments/lib/tasks/lm_report.h"
#include "experiments/lib/tasks/lm_support.h"

namespace moelab::experiments {
namespace {

namespace fs = std::filesystem;
using text::Split;

class LmTask : public Task {
 public:
  void declare_config(Schema& s) const override {
    s.add_section("data", "the corpus, its tokenizer and the packed sequences (docs/text.md)");
    s.add_string("data.cache_dir", "", "corpus and tokenizer cache (\"\": ~/.cache/moelab/text)");
    s.add_int("data.max_domain_bytes", 1 << 20, "bytes per domain over all splits (the corpus's cap)").at_least(1024);
    s.add_choice("data.tokenizer", "unigram", {"unigram", "bpe"}, "SentencePiece model type");
    s.add_int("data.vocab_size", 8192, "tokenizer vocabulary (256 byte pieces and 4 control ids included)")
        .range(300, 65536);
    s.add_int("data.tokenizer_seed", 0, "SentencePiece training seed").at_least(0);
    s.add_int("data.seq_len", 128, "tokens per training sequence").range(2, 8192);
    s.add_int("data.batch_size", 16, "sequences per micro-batch").at_least(1);
    s.add_int("data.eval_batch_size", 8, "sequences per evaluation batch").at_least(1);
    s.add_int("data.val_tokens", 32768, "validation tokens evaluated during training (0: the whole split)")
        .at_least(0);

    s.add_section("model", "the text transformer (pre-LN blocks, GELU, tied embeddings); MoE replaces chosen FFNs");
    s.add_int("model.dim", 128, "token width").at_least(1);
    s.add_int("model.depth", 4, "transformer blocks").range(1, 64);
    s.add_int("model.num_heads", 4, "attention heads (dim must be a multiple)").at_least(1);
    s.add_float("model.mlp_ratio", 4.0, "dense FFN width / dim (also each expert's width unless model.moe.expert_d_ff)")
        .greater_than(0);
    s.add_choice("model.positions", "rotary", {"rotary", "learned"}, "rotary (q, k rotation) or a learned table");
    s.add_float("model.rotary_base", 10000.0, "rotary angle base").greater_than(1);
    s.add_float("model.dropout", 0.0, "residual dropout in the blocks").range(0, 0.9);
    s.add_float("model.init_std", 0.02, "std of the normal weight and embedding init").greater_than(0);
    declare_moe_config(s, 2);
    check_moe_layers_within(s, "model.depth");

    s.add_section("report", "what the run directory gets beyond the Trainer's report");
    s.add_int("report.sample_tokens", 96, "tokens of each domain's sample text coloured by expert (0: none)")
        .range(0, 1024);

    s.add_check([](const Config& c, io::ConfigReporter& r) {
      const int64_t dim = c.get_int("model.dim"), heads = c.get_int("model.num_heads");
      if (dim % heads != 0)
        r.error("model.num_heads", "model.dim = " + std::to_string(dim) + " is not a multiple of model.num_heads = " +
                                       std::to_string(heads));
      else if (c.get_string("model.positions") == "rotary" && (dim / heads) % 2 != 0)
        r.error("model.num_heads", "rotary positions need an even head width; model.dim / model.num_heads = " +
                                       std::to_string(dim / heads));
    });
  }

  void build(const Config& cfg, const TaskContext& ctx) override {
    seed_ = ctx.seed;
    run_dir_ = ctx.run_dir;
    device_ = ctx.device;
    cfg_ = std::make_unique<Config>(cfg);
    seq_len_ = cfg.get_int("data.seq_len");
    batch_ = cfg.get_int("data.batch_size");
    eval_batch_ = cfg.get_int("data.eval_batch_size");
    sample_tokens_ = cfg.get_int("report.sample_tokens");
    const auto t0 = std::chrono::steady_clock::now();
    corpus_ = text::load_or_build_corpus(lm_corpus_options(cfg));
    try {
      tokenizer_ = std::make_unique<text::Tokenizer>(text::load_or_train_tokenizer(corpus_, lm_tokenizer_options(cfg)));
    } catch (const text::TokenizerTrainingError& e) {
      throw ConfigError({cfg.origin("data.vocab_size").str() + ": " + e.message()});
    }
    domains_ = corpus_.domain_names();
    MOELAB_CHECK(domains_.size() < 256, "lm: " << domains_.size() << " domains exceed the 255 a token stream holds");
    train_ids_ = encode_all(corpus_.split(Split::kTrain));
    // Validation and test in one fixed shuffled order (independent of the seed), so that the validation
    // subset mixes every domain and all runs see the same one.
    val_ = eval_stream(corpus_.split(Split::kValidation), cfg.get_int("data.val_tokens"), "lm.validation");
    test_ = eval_stream(corpus_.split(Split::kTest), 0, "lm.test");
    train_size_ = 1;
    for (const auto& v : train_ids_) train_size_ += static_cast<int64_t>(v.size()) + 1;
    if (count_sequences(train_size_, seq_len_) < batch_)
      throw ConfigError({cfg.origin("data.batch_size").str() + ": data.batch_size = " + std::to_string(batch_) +
                         " exceeds the " + std::to_string(count_sequences(train_size_, seq_len_)) + " training sequences"});
    start_epoch(0);
    if (!run_dir_.empty()) {
      fs::create_directories(fs::path(run_dir_) / "text");
      io::write_file_atomic(run_tokenizer_path(run_dir_).string(), tokenizer_->serialized_model());
    }
    if (ctx.log) {
      const text::TextTransformerOptions o = lm_model_options(cfg, tokenizer_->vocab_size());
      std::string moe_desc = "dense";
      if (!o.moe_layers.empty()) {
        moe_desc = "MoE in blocks [";
        for (size_t i = 0; i < o.moe_layers.size(); ++i) moe_desc += (i ? ", " : "") + std::to_string(o.moe_layers[i]);
        moe_desc += "]: " + moe_config_from(cfg).describe();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ctx.log("lm: " + std::to_string(domains_.size()) + " domains, " + std::to_string(train_size_) + " train / " +
              std::to_string(val_.size()) + " validation / " + std::to_string(test_.size()) + " test tokens (" +
              cfg.get_string("data.tokenizer") + " " + std::to_string(tokenizer_->vocab_size()) + " pieces; " +
              std::to_string(count_sequences(train_size_, seq_len_)) + " sequences of " + std::to_string(seq_len_) +
              " per epoch; data ready in " + std::to_string(static_cast<int>(secs)) + " s); transformer dim " +
              std::to_string(o.dim) + ", " + std::to_string(o.depth) + " blocks, " + moe_desc);
    }
  }

  std::shared_ptr<nn::Module> make_model() override { return make_lm_model(*cfg_, tokenizer_->vocab_size(), seed_); }

  int64_t micro_batches_per_epoch() const override { return count_sequences(train_size_, seq_len_) / batch_; }
  int64_t examples_per_micro_batch() const override { return batch_; }

  nn::Batch next_batch(int64_t, int) override {
    if (position_ >= micro_batches_per_epoch()) start_epoch(epoch_ + 1);
    nn::Batch b = sequence_batch(train_, seq_len_, position_ * batch_, batch_);
    ++position_;
    return b;
  }

  StepResult train_step(nn::Module& model, const nn::Batch& b, nn::ForwardContext& ctx) override {
    Tensor logits = model.forward(b.tokens, ctx);  // (B, T, V)
    const int64_t V = logits.size(2);
    Tensor loss = cross_entropy(logits.reshape(Shape{-1, V}), b.targets.reshape(Shape{-1}));
    return {loss, {}, b.tokens.size(0)};
  }

  EvalResult evaluate(EvalContext& ec) override {
    EvalResult r;
    text::ByteLossTally v = evaluate_stream(ec, val_, nullptr);
    r.metrics["val/bpb"] = v.bits_per_byte();
    r.metrics["val/loss"] = v.nats_per_token();
    if (ec.final) {
      ec.routing.clear();  // the report's routing heatmaps then show the test set
      std::vector<LayerSpecialization> layers;
      text::ByteLossTally t = evaluate_stream(ec, test_, &layers);
      r.metrics["test/bpb"] = t.bits_per_byte();
      r.metrics["test/loss"] = t.nats_per_token();
      for (size_t d = 0; d < domains_.size(); ++d)
        if (t.bytes(static_cast<int64_t>(d)) > 0)
          r.metrics["test/bpb_" + domains_[d]] = t.bits_per_byte(static_cast<int64_t>(d));
      for (const LayerSpecialization& l : layers) r.metrics["test/same_expert_rate/" + l.path] = l.same_rate();
      if (!run_dir_.empty()) write_final_report(ec.model, t, std::move(layers));
    }
    return r;
  }

  std::vector<std::string> headline_metrics() const override { return {"test/bpb", "val/bpb", "test/loss"}; }
  std::vector<std::string> label_names() const override { return domains_; }
  std::string label_kind() const override { return "domain"; }

  void save_state(TaskState& state) const override {
    state.put_int("data.epoch", epoch_);
    state.put_int("data.position", position_);
  }
  void load_state(const TaskState& state) override {
    start_epoch(state.get_int("data.epoch"));
    position_ = state.get_int("data.position");
  }

 private:
  std::vector<std::vector<int32_t>> encode_all(const std::vector<text::Document>& docs) const {
    std::vector<std::vector<int32_t>> ids(docs.size());
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < docs.size(); ++i) ids[i] = tokenizer_->encode(docs[i].text);
    return ids;
  }

  static std::vector<int64_t> shuffled(size_t n, RngStream rng) {
    std::vector<int64_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<int64_t>(i);
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    return order;
  }

  // A held-out split in a fixed shuffled order, cut to about max_tokens (0: all) at a document boundary.
  TokenStream eval_stream(const std::vector<text::Document>& docs, int64_t max_tokens, const char* name) const {
    std::vector<std::vector<int32_t>> ids = encode_all(docs);
    std::vector<int64_t> order = shuffled(docs.size(), RngStream(0, name));
    if (max_tokens > 0) {
      int64_t total = 1;
      size_t keep = 0;
      while (keep < order.size() && total < max_tokens) total += static_cast<int64_t>(ids[order[keep++]].size()) + 1;
      order.resize(keep);
    }
    return make_token_stream(docs, ids, order, tokenizer_->eos_id());
  }

  // The training stream of `epoch`: the documents in that epoch's order (from the seed).
  void start_epoch(int64_t epoch) {
    epoch_ = epoch;
    position_ = 0;
    train_ = make_token_stream(corpus_.split(Split::kTrain), train_ids_,
                               shuffled(train_ids_.size(), RngStream(seed_, "data.epoch." + std::to_string(epoch))),
                               tokenizer_->eos_id());
  }

  // Bits per byte of a stream; with `layers`, also the per-layer routing study (top experts per token).
  text::ByteLossTally evaluate_stream(EvalContext& ec, const TokenStream& stream,
                                      std::vector<LayerSpecialization>* layers) {
    text::ByteLossTally tally(static_cast<int64_t>(domains_.size()));
    const int64_t n = count_sequences(stream.size(), seq_len_);
    const int64_t full = stream.size() - 1 == n * seq_len_ ? n : n - 1;  // sequences of the full length
    for (int64_t first = 0; first < n;) {
      const int64_t count = first < full ? std::min(eval_batch_, full - first) : 1;
      const nn::Batch b = sequence_batch(stream, seq_len_, first, count);
      const nn::Batch on_device = b.to(device_);
      Tensor logits = ec.run(on_device, [&](nn::ForwardContext& ctx) { return ec.model.forward(on_device.tokens, ctx); });
      const int64_t B = logits.size(0), T = logits.size(1);
      Tensor logp = log_softmax(logits, -1);
      Tensor picked = gather(logp, 2, on_device.targets.reshape(Shape{B, T, 1}));
      std::vector<double> nats = picked.to(DType::f64).to(Device::cpu()).to_vector<double>();
      for (double& x : nats) x = -x;
      tally.add_tokens(nats, b.targets.to_vector<int64_t>(), b.labels.to_vector<int64_t>(), tokenizer_->piece_bytes());
      if (layers) add_routing(ec.routing, B, T, *layers);
      first += count;
    }
    if (layers)
      for (LayerSpecialization& l : *layers)
        if (const moe::RoutingTally* t = ec.routing.find(l.path)) l.domain_expert = t->label_matrix(int64_t(domains_.size()));
    return tally;
  }

  // Top expert of each token of the latest forward: consecutive pairs that keep it, and the marginal.
  static void add_routing(const moe::RoutingLog& log, int64_t B, int64_t T, std::vector<LayerSpecialization>& layers) {
    for (const auto& [path, tally] : log.layers()) {
      const moe::RoutingRecord* rec = log.record(path);
      if (!rec || rec->num_tokens != B * T) continue;  // soft_moe: no discrete choice
      auto it = std::find_if(layers.begin(), layers.end(), [&](const LayerSpecialization& l) { return l.path == path; });
      if (it == layers.end()) {
        layers.push_back({});
        it = layers.end() - 1;
        it->path = path;
        it->num_experts = rec->num_experts;
        it->top_counts.assign(static_cast<size_t>(rec->num_experts), 0.0);
      }
      const std::vector<int64_t> top = moe::top_expert_per_token(*rec);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          const int64_t e = top[static_cast<size_t>(b * T + t)];
          if (e >= 0) it->top_counts[static_cast<size_t>(e)] += 1;
          if (t == 0) continue;
          const int64_t prev = top[static_cast<size_t>(b * T + t - 1)];
          if (e < 0 || prev < 0) continue;
          it->pairs += 1;
          if (e == prev) it->same_pairs += 1;
        }
    }
  }

  // The pieces of `ids` with runs of byte pieces merged (so multi-byte characters decode whole); first[i]
  // is the index of piece i's first token.
  void split_pieces(const std::vector<int32_t>& ids, std::vector<std::string>& pieces, std::vector<size_t>& first) const {
    for (size_t i = 0; i < ids.size();) {
      size_t j = i + 1;
      if (tokenizer_->is_byte_piece(ids[i]))
        while (j < ids.size() && tokenizer_->is_byte_piece(ids[j])) ++j;
      pieces.push_back(tokenizer_->decode(std::span<const int32_t>(ids.data() + i, j - i)));
      first.push_back(i);
      i = j;
    }
  }

  // One test document per domain (the first in the split), its first sample_tokens tokens routed alone.
  std::vector<RoutedSample> routed_samples(nn::Module& model, std::vector<std::string>& paths) {
    std::vector<RoutedSample> out;
    if (sample_tokens_ <= 0) return out;
    const auto& docs = corpus_.split(Split::kTest);
    for (size_t d = 0; d < domains_.size(); ++d) {
      auto it = std::find_if(docs.begin(), docs.end(), [&](const text::Document& doc) { return doc.domain == int(d); });
      if (it == docs.end()) continue;
      std::vector<int32_t> ids = tokenizer_->encode(it->text);
      const int64_t limit = std::min<int64_t>(sample_tokens_, seq_len_ - 1);
      if (static_cast<int64_t>(ids.size()) > limit) ids.resize(static_cast<size_t>(limit));
      if (ids.empty()) continue;
      std::vector<int64_t> in = {tokenizer_->eos_id()}, dom(ids.size() + 1, static_cast<int64_t>(d));
      in.insert(in.end(), ids.begin(), ids.end());
      nn::Batch b;
      b.tokens = Tensor::from_vector(in, Shape{1, static_cast<int64_t>(in.size())});
      b.token_ids = b.tokens;
      b.labels = Tensor::from_vector(dom, Shape{1, static_cast<int64_t>(dom.size())});
      const nn::Batch on_device = b.to(device_);
      moe::RoutingLog log(true);
      nn::ForwardContext ctx(on_device);
      ctx.routing = &log;
      model.forward(on_device.tokens, ctx);
      RoutedSample s;
      s.domain = domains_[d];
      std::vector<size_t> first;
      split_pieces(ids, s.pieces, first);
      paths.clear();
      for (const auto& [path, tally] : log.layers()) {
        const moe::RoutingRecord* rec = log.record(path);
        if (!rec) continue;
        const std::vector<int64_t> top = moe::top_expert_per_token(*rec);
        std::vector<int64_t> per_piece;
        for (size_t f : first) per_piece.push_back(top[f + 1]);  // +1: the leading </s>
        s.experts.push_back(std::move(per_piece));
        paths.push_back(path);
      }
      if (!s.experts.empty()) out.push_back(std::move(s));
    }
    return out;
  }

  void write_final_report(nn::Module& model, const text::ByteLossTally& t, std::vector<LayerSpecialization> layers) {
    LmReport rep;
    rep.set_name = "test";
    rep.domains = domains_;
    rep.bpb = t;
    rep.layers = std::move(layers);
    rep.samples = routed_samples(model, rep.layer_paths);
    write_lm_report(run_dir_, rep);
  }

  uint64_t seed_ = 0;
  Device device_ = Device::cpu();
  std::string run_dir_;
  std::unique_ptr<Config> cfg_;
  text::Corpus corpus_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::vector<std::string> domains_;
  std::vector<std::vector<int32_t>> train_ids_;
  TokenStream train_, val_, test_;
  int64_t train_size_ = 0, seq_len_ = 128, batch_ = 16, eval_batch_ = 8, sample_tokens_ = 96;
  int64_t epoch_ = 0, position_ = 0;
};

TaskRegistration reg{"lm", "next-token language modelling of the multi-domain text corpus (bits per byte)",
                     [] { return std::make_unique<LmTask>(); }};

}  // namespace
}  // namespace moelab::experiments
