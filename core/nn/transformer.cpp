// The pre-LN transformer block with a pluggable FFN.
#include "core/nn/transformer.h"

#include <algorithm>
#include <cmath>

#include "core/ops/ops.h"

namespace moelab::nn {

TransformerBlock::TransformerBlock(const TransformerBlockOptions& opt, RngStream& rng, std::shared_ptr<Module> f)
    : Module("TransformerBlock"), options(opt) {
  MOELAB_CHECK(opt.dim > 0, "TransformerBlock: dim must be positive, got " << opt.dim);
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(opt.dim, opt.ln_eps, true, opt.dtype));
  AttentionOptions ao;
  ao.dim = opt.dim;
  ao.num_heads = opt.num_heads;
  ao.causal = opt.causal;
  ao.qkv_bias = opt.qkv_bias;
  ao.rotary = opt.rotary;
  ao.rotary_base = opt.rotary_base;
  ao.init = opt.init;
  ao.dtype = opt.dtype;
  attn = register_module("attn", std::make_shared<MultiHeadAttention>(ao, rng));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(opt.dim, opt.ln_eps, true, opt.dtype));
  if (!f) {
    MlpOptions mo;
    mo.dim = opt.dim;
    mo.hidden = static_cast<int64_t>(std::llround(opt.mlp_ratio * static_cast<double>(opt.dim)));
    mo.activation = opt.activation;
    mo.gated = opt.gated;
    mo.init = opt.init;
    mo.dtype = opt.dtype;
    f = std::make_shared<MLP>(mo, rng);
  }
  ffn = register_module(opt.ffn_name, std::move(f));
  if (opt.dropout > 0) drop = register_module("drop", std::make_shared<Dropout>(opt.dropout));
}

void TransformerBlock::set_ffn(std::shared_ptr<Module> f) {
  replace_module(options.ffn_name, f);
  ffn = std::move(f);
}

Tensor TransformerBlock::forward(const Tensor& x, ForwardContext& ctx) { return forward(x, ctx, nullptr); }

Tensor TransformerBlock::forward(const Tensor& x, ForwardContext& ctx, KVCache* cache) {
  MOELAB_CHECK(x.dim() == 3 && x.size(2) == options.dim, "TransformerBlock(dim " << options.dim << "): input "
                                                                                 << x.shape().str()
                                                                                 << " is not (B, T, d)");
  Tensor a = attn->forward(norm1->forward(x), ctx, cache);
  if (drop) a = drop->forward(a, ctx);
  Tensor h = x + a;
  Tensor f = ffn->forward(norm2->forward(h), ctx);
  MOELAB_CHECK(f.defined() && f.shape() == h.shape(), "TransformerBlock: FFN '" << options.ffn_name << "' ("
                                                      << ffn->type_name() << ") returned "
                                                      << (f.defined() ? f.shape().str() : "nothing") << ", expected "
                                                      << h.shape().str());
  if (drop) f = drop->forward(f, ctx);
  return h + f;
}

std::shared_ptr<ModuleList> make_block_stack(const TransformerBlockOptions& block, int64_t depth,
                                             const std::vector<int64_t>& moe_layers, const FfnFactory& make_moe,
                                             RngStream& rng, const std::string& owner) {
  auto blocks = std::make_shared<ModuleList>();
  for (int64_t i = 0; i < depth; ++i) {
    TransformerBlockOptions bo = block;
    std::shared_ptr<Module> ffn;
    if (std::find(moe_layers.begin(), moe_layers.end(), i) != moe_layers.end()) {
      bo.ffn_name = "moe";
      ffn = make_moe(i, rng);  // drawn before the block's own parameters
      MOELAB_CHECK(ffn, owner << ": the MoE factory returned nothing for block " << i);
    }
    blocks->push_back(std::make_shared<TransformerBlock>(bo, rng, ffn));
  }
  return blocks;
}

}  // namespace moelab::nn
