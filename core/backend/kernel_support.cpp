// Kernel support by probing: one tiny call per (kernel, dtype), NotSupported means "no".
#include "core/backend/kernel_support.h"

#include <map>
#include <mutex>
#include <tuple>

namespace moelab {

namespace {

const char* const kNames[] = {
    "fill", "copy", "unary", "unary_backward", "binary", "reduce", "matmul", "softmax", "softmax_backward",
    "logsumexp", "layernorm", "layernorm_backward", "gather", "scatter_add", "index_select_rows", "index_add_rows",
    "topk", "im2col", "col2im", "cross_entropy", "cross_entropy_backward", "random_uniform", "random_normal",
    "dropout_mask", "adamw_update", "sgd_update", "rmsprop_update", "sum_squares", "moe_plan", "moe_gather_rows",
    "moe_scatter_rows", "moe_combine", "moe_combine_backward", "moe_expert_ffn", "moe_expert_ffn_backward",
    "attention_forward", "attention_backward"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Kernel::count_));

// One call of kernel k on tiny, valid inputs of dtype dt on device d.
void probe(Backend& be, Kernel k, DType dt, Device d) {
  auto t = [&](const Shape& s, DType type = DType::f32) { return Tensor::ones(s, type, d); };
  auto ids = [&](const std::vector<int64_t>& v) { return Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}, d); };
  Tensor x = t({2, 3}, dt), out = t({2, 3}, dt), none;
  switch (k) {
    case Kernel::fill: return be.fill(out, 1.0);
    case Kernel::copy: return be.copy(x, out);
    case Kernel::unary: return be.unary(UnaryOp::exp, x, out, 0.0);
    case Kernel::unary_backward: {
      Tensor gx = t({2, 3}, dt);
      return be.unary_backward(UnaryOp::exp, x, x, x, gx, 0.0);
    }
    case Kernel::binary: return be.binary(BinaryOp::add, x, x, out);
    case Kernel::reduce: {
      Tensor r = t({1, 3}, dt);
      return be.reduce(ReduceOp::sum, x, 1, 2, 3, r, nullptr);
    }
    case Kernel::matmul: {
      Tensor a = t({1, 2, 3}, dt), b = t({1, 3, 2}, dt), c = t({1, 2, 2}, dt);
      return be.matmul(a, b, c, false, false, 1.0, 0.0);
    }
    case Kernel::softmax: return be.softmax(x, out, false, 0);
    case Kernel::softmax_backward: {
      Tensor gx = t({2, 3}, dt);
      return be.softmax_backward(x, x, gx, false);
    }
    case Kernel::logsumexp: {
      Tensor r = t({2}, dt);
      return be.logsumexp(x, r);
    }
    case Kernel::layernorm: {
      Tensor mean = t({2}, dt), rstd = t({2}, dt);
      return be.layernorm(x, none, none, 1e-5, out, mean, rstd);
    }
    case Kernel::layernorm_backward: {
      Tensor mean = t({2}, dt), rstd = t({2}, dt), gx = t({2, 3}, dt), gg, gb;
      return be.layernorm_backward(x, none, mean, rstd, x, gx, gg, gb);
    }
    case Kernel::gather: {
      Tensor r = t({1, 2, 1}, dt);
      return be.gather(t({1, 3, 1}, dt), ids({0, 2}), 1, 3, 2, 1, r);
    }
    case Kernel::scatter_add: {
      Tensor r = t({1, 3, 1}, dt);
      return be.scatter_add(t({1, 2, 1}, dt), ids({0, 2}), 1, 3, 2, 1, r);
    }
    case Kernel::index_select_rows: {
      Tensor r = t({1, 3}, dt);
      return be.index_select_rows(x, ids({1}), r);
    }
    case Kernel::index_add_rows: return be.index_add_rows(t({1, 3}, dt), ids({1}), out);
    case Kernel::topk: {
      Tensor v = t({2, 1}, dt), i = t({2, 1}, DType::i64);
      return be.topk(x, 1, v, i);
    }
    case Kernel::im2col: {
      Tensor cols = t({4, 4}, dt);
      return be.im2col(t({1, 3, 3}, dt), 2, 2, 1, 0, cols);
    }
    case Kernel::col2im: {
      Tensor gx = t({1, 3, 3}, dt);
      return be.col2im(t({4, 4}, dt), 2, 2, 1, 0, gx);
    }
    case Kernel::cross_entropy: {
      Tensor loss = t({2}, dt);
      return be.cross_entropy(x, ids({0, 2}), 0.0, -100, loss);
    }
    case Kernel::cross_entropy_backward: {
      Tensor g = t({2, 3}, dt);
      return be.cross_entropy_backward(x, ids({0, 2}), t({2}, dt), 0.0, -100, g);
    }
    case Kernel::random_uniform: return be.random_uniform(out, 1, 0, 0.0, 1.0);
    case Kernel::random_normal: return be.random_normal(out, 1, 0, 0.0, 1.0);
    case Kernel::dropout_mask: return be.dropout_mask(out, 1, 0, 0.5);
    case Kernel::adamw_update: {
      Tensor m = t({2, 3}, dt), v = t({2, 3}, dt);
      return be.adamw_update(out, x, m, v, AdamWParams{1e-3, 0.9, 0.999, 1e-8, 0.0, 1});
    }
    case Kernel::sgd_update: {
      Tensor buf = t({2, 3}, dt);
      return be.sgd_update(out, x, buf, 1e-3, 0.9, 0.0, false, true);
    }
    case Kernel::rmsprop_update: {
      Tensor sq = t({2, 3}, dt), avg = t({2, 3}, dt);
      return be.rmsprop_update(out, x, sq, avg, 1e-3, 0.99, 1e-8, 0.0, true);
    }
    case Kernel::sum_squares: be.sum_squares(x); return;
    case Kernel::attention_forward:
    case Kernel::attention_backward: {
      // (B, H, T, D) = (1, 1, 2, 3), every key valid.
      Tensor q = t({1, 1, 2, 3}, dt), o = t({1, 1, 2, 3}, dt), lse = t({1, 1, 2}, dt);
      be.attention_forward(q, q, q, none, true, 0.5, o, lse);
      if (k == Kernel::attention_forward) return;
      Tensor gq = t({1, 1, 2, 3}, dt), gk = t({1, 1, 2, 3}, dt), gv = t({1, 1, 2, 3}, dt);
      return be.attention_backward(q, q, q, none, true, 0.5, o, lse, q, gq, gk, gv);
    }
    default: break;
  }
  // The MoE dispatch family: 2 tokens, one slot each, 2 experts.
  Tensor slot_expert = ids({1, 0}), offsets = ids({0, 1, 2}), counts = t({2}, DType::i64),
         expert_offsets = t({3}, DType::i64), row_slot = t({2}, DType::i64), slot_row = t({2}, DType::i64);
  be.moe_plan(slot_expert, none, 2, -1, counts, expert_offsets, row_slot, slot_row);
  if (k == Kernel::moe_plan) return;
  Tensor rows = t({2, 3}, dt), weight = t({2}, dt);
  switch (k) {
    case Kernel::moe_gather_rows: return be.moe_gather_rows(x, slot_row, offsets, rows);
    case Kernel::moe_scatter_rows: return be.moe_scatter_rows(rows, slot_row, offsets, out);
    case Kernel::moe_combine: return be.moe_combine(rows, weight, slot_row, offsets, out);
    case Kernel::moe_combine_backward: {
      Tensor gy = t({2, 3}, dt), gw = t({2}, dt);
      return be.moe_combine_backward(rows, weight, slot_row, offsets, x, gy, gw);
    }
    default: break;
  }
  ExpertWeights w{t({2, 3, 4}, dt), t({2, 4}, dt), t({2, 4, 3}, dt), t({2, 3}, dt), Tensor(), ExpertActivation::gelu};
  Tensor host_offsets = Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, Shape{3});
  Tensor h = t({2, 4}, dt), g, a = t({2, 4}, dt), y = t({2, 3}, dt);
  be.moe_expert_ffn(rows, host_offsets, w, h, g, a, y);
  if (k == Kernel::moe_expert_ffn) return;
  ExpertWeights grads{t({2, 3, 4}, dt), t({2, 4}, dt), t({2, 4, 3}, dt), t({2, 3}, dt), Tensor(), ExpertActivation::gelu};
  Tensor gx = t({2, 3}, dt);
  be.moe_expert_ffn_backward(rows, host_offsets, w, h, g, a, y, gx, grads);
}

}  // namespace

const char* kernel_name(Kernel k) { return kNames[static_cast<size_t>(k)]; }

std::vector<Kernel> all_kernels() {
  std::vector<Kernel> out;
  for (int i = 0; i < static_cast<int>(Kernel::count_); ++i) out.push_back(static_cast<Kernel>(i));
  return out;
}

std::vector<DType> support_dtypes() { return {DType::f32, DType::f64, DType::i32, DType::i64}; }

bool backend_supports(Backend& backend, Kernel k, DType dt) {
  if (!backend.available()) return false;
  static std::mutex mu;
  static std::map<std::tuple<BackendKind, Kernel, DType>, bool> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(backend.kind(), k, dt);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  bool ok = true;
  try {
    probe(backend, k, dt, backend.kind() == BackendKind::cuda ? Device::cuda() : Device::cpu());
    backend.synchronize();
  } catch (const NotSupported&) {
    ok = false;
  } catch (const Error&) {
    // Some kernels reject a dtype with a plain error naming it (integer softmax): not supported either.
    ok = false;
  }
  cache.emplace(key, ok);
  return ok;
}

bool Backend::supports(Kernel k, DType dt) { return backend_supports(*this, k, dt); }

}  // namespace moelab
