#pragma once
// MinAtar's Q-network (Conv 3x3 16 -> ReLU -> FC 128 -> ReLU -> actions; LayerNorms for PQN) whose
// penultimate layer may be an MoE layer of the core over tokens of the conv features (Sokar et al. 2025's
// PerConv / PerFeat / PerSamp), a single scaled expert, or a dense layer widened to the MoE's parameter count.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/moe/moe_config.h"
#include "core/moe/moe_layer.h"
#include "core/nn/layers.h"
#include "core/nn/mlp.h"
#include "core/nn/module.h"

namespace moelab::rl {

// What replaces FC 128 -> ReLU.
enum class Penultimate : uint8_t {
  dense,          // Linear(conv features, hidden)
  moe,            // tokens -> MoE layer (d -> expert_d_ff -> d per token) -> flatten
  scaled_expert,  // tokens -> one MLP of width num_experts * expert_d_ff (the MoE papers' control)
  wide_dense,     // Linear(conv features, H) with H giving the moe network's parameter count
};
// How the conv output (8, 8, C') becomes tokens for the moe and scaled_expert layers.
enum class Tokenization : uint8_t {
  per_conv,  // 64 tokens of C' (each spatial position's channel vector)
  per_feat,  // C' tokens of 64 (each channel map)
  per_samp,  // 1 token of 64 C' (the whole feature vector)
};
Penultimate parse_penultimate(std::string_view name);  // throws std::invalid_argument listing the names
Tokenization parse_tokenization(std::string_view name);
const char* penultimate_name(Penultimate p);
const char* tokenization_name(Tokenization t);

struct QNetworkOptions {
  int64_t in_channels = 4;     // observation channels (plus game-id planes for multi-game)
  int64_t num_actions = 6;
  int64_t conv_channels = 16;
  int64_t hidden = 128;        // dense width; the expert hidden width unless moe.expert_d_ff is set
  bool layer_norm = false;     // PQN: LayerNorm over channels after the conv and over the hidden layer
  Penultimate penultimate = Penultimate::dense;
  Tokenization tokenization = Tokenization::per_conv;
  moe::MoEConfig moe;          // for moe (and num_experts, expert_d_ff for scaled_expert / wide_dense)
  int64_t board = 10;          // MinAtar's 10 x 10 grid
};

// Tokens of the tokenization for conv features of `positions` positions and `channels` channels.
int64_t num_tokens(Tokenization t, int64_t positions, int64_t channels);
int64_t token_dim(Tokenization t, int64_t positions, int64_t channels);
// h: (B, P, C') conv features (position-major) -> tokens (B, num_tokens, token_dim).
Tensor tokenize(const Tensor& h, Tokenization t);

class QNetwork : public nn::Module {
 public:
  QNetwork(const QNetworkOptions& options, RngStream& rng);
  // x: (B, C, 10, 10) f32 -> Q-values (B, num_actions). MoE layers read routing labels from ctx's batch.
  Tensor forward(const Tensor& x, nn::ForwardContext& ctx) override;
  using nn::Module::forward;

  const QNetworkOptions& options() const { return options_; }
  int64_t feature_positions() const { return (options_.board - 2) * (options_.board - 2); }
  int64_t hidden_width() const { return hidden_width_; }  // the wide_dense width (else options.hidden)
  std::string describe() const;                           // one line: layers and sizes

  // Children: conv, conv_norm (layer_norm), then fc + fc_norm (dense, wide_dense), moe (moe) or
  // expert (scaled_expert, an nn::MLP with relu), then head.
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::LayerNorm> conv_norm, fc_norm;
  std::shared_ptr<nn::Linear> fc, head;
  std::shared_ptr<moe::MoELayer> moe_layer;
  std::shared_ptr<nn::MLP> expert;

 private:
  QNetworkOptions options_;
  int64_t hidden_width_ = 0;
};

// Parameters of the network with options `o` (builds it once, on a scratch stream).
int64_t q_network_parameters(const QNetworkOptions& o);

}  // namespace moelab::rl
