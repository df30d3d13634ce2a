// The residual MLP: construction (in the order the initialization stream is drawn) and forward.
#include "experiments/lib/models/residual_mlp.h"

#include <algorithm>

#include "core/moe/moe_layer.h"
#include "core/nn/mlp.h"
#include "core/ops/ops.h"

namespace moelab::experiments {

ResidualMlp::ResidualMlp(const ResidualMlpOptions& o, RngStream& rng) : Module("ResidualMlp") {
  input = register_module("input", std::make_shared<nn::Linear>(o.in, o.d_model, true, rng));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < o.depth; ++i) {
    auto block = std::make_shared<Block>();
    block->norm = block->register_module("norm", std::make_shared<nn::LayerNorm>(o.d_model));
    std::shared_ptr<nn::Module> ffn;
    if (std::count(o.moe_blocks.begin(), o.moe_blocks.end(), i))
      ffn = std::make_shared<moe::MoELayer>(
          o.moe, moe::MoELayerOptions{.d_model = o.d_model, .d_ff = o.d_ff, .seq_len = o.tokens_per_sequence}, rng);
    else
      ffn = std::make_shared<nn::MLP>(nn::MlpOptions{.dim = o.d_model, .hidden = o.d_ff}, rng);
    block->ffn = block->register_module("ffn", ffn);
    blocks->push_back(block);
  }
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(o.d_model));
  head = register_module("head", std::make_shared<nn::Linear>(o.d_model, o.out, true, rng));
}

Tensor ResidualMlp::forward(const Tensor& x, nn::ForwardContext& ctx) {
  Tensor h = input->forward(x);
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto& block = static_cast<Block&>((*blocks)[i]);
    h = h + block.ffn->forward(block.norm->forward(h), ctx);
  }
  return head->forward(norm->forward(h));
}

}  // namespace moelab::experiments
