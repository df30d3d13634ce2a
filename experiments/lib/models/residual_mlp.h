#pragma once
// A residual MLP over feature vectors: x -> Linear(in, d) -> blocks h += FFN(LayerNorm(h)) -> LayerNorm ->
// Linear(d, out). The FFN of the chosen blocks is an MoE layer, else a dense MLP (toy_mixture's model).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/moe/moe_config.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"

namespace moelab::experiments {

struct ResidualMlpOptions {
  int64_t in = 0, out = 0, d_model = 32, d_ff = 64, depth = 2;
  std::vector<int64_t> moe_blocks;  // block indices whose FFN is an MoE layer
  moe::MoEConfig moe;
  int64_t tokens_per_sequence = 0;  // what an MoE layer treats as one sequence (Soft MoE sizes its slots from it)
};

class ResidualMlp : public nn::Module {
 public:
  ResidualMlp(const ResidualMlpOptions& options, RngStream& rng);
  // x: (B, in) -> (B, out). Parameter names: input.*, blocks.<i>.norm.*, blocks.<i>.ffn.*, norm.*, head.*
  Tensor forward(const Tensor& x, nn::ForwardContext& ctx) override;
  using Module::forward;

  struct Block : nn::Module {
    Block() : Module("Block") {}
    std::shared_ptr<nn::LayerNorm> norm;
    std::shared_ptr<nn::Module> ffn;
  };
  std::shared_ptr<nn::Linear> input, head;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
};

}  // namespace moelab::experiments
