// ForwardContext: per-module draw streams and aux-loss collection.
#include "core/nn/context.h"

#include "core/nn/module.h"
#include "core/ops/ops.h"

namespace moelab::nn {

Tensor total_aux_loss(const std::vector<AuxLoss>& terms) {
  Tensor total;
  for (const auto& a : terms) {
    MOELAB_CHECK(a.value.defined() && a.value.numel() == 1,
                 "aux loss '" << a.full_name() << "' must be a single-element tensor");
    Tensor term = mul(a.value.reshape(Shape{}), a.weight);
    total = total.defined() ? add(total, term) : term;
  }
  return total;
}

RngStream& ForwardContext::rng(const Module& module) {
  auto it = streams_.find(module.path());
  if (it == streams_.end())
    it = streams_.emplace(module.path(), RngStream(draw_key_, "module:" + module.path())).first;
  return it->second;
}

void ForwardContext::add_aux_loss(const Module& module, std::string name, Tensor value, double weight) {
  aux_.push_back({module.path(), std::move(name), std::move(value), weight});
}

uint64_t forward_draw_key(uint64_t seed, int64_t step, int64_t micro) {
  return hash_stream_key(seed, "forward:" + std::to_string(step) + ":" + std::to_string(micro));
}

uint64_t evaluation_draw_key(uint64_t seed, int64_t step) {
  return hash_stream_key(seed, "evaluation:" + std::to_string(step));
}

}  // namespace moelab::nn
