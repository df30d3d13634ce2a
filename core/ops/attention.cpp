// Scaled dot-product attention with causal and key-padding masks: one fused kernel each way (the backward
// recomputes probabilities from the saved row log-sum-exp), and the composed form (matmul + masked
// softmax) kept as a reference for tests and benchmarks.
#include "core/kernels/attention.h"

#include <cmath>
#include <limits>

#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

struct AttnShapes {
  int64_t B, H, Tq, Tk, D, Dv;
};

AttnShapes check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask) {
  detail::backend_of({&q, &k, &v, &mask.key_padding}, kOp);
  detail::check_float(q, kOp);
  detail::check_same_dtype(q, k, kOp);
  detail::check_same_dtype(q, v, kOp);
  MOELAB_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, kOp << ": q, k, v must be (B, H, T, D), got "
                                                                 << q.shape().str() << ", " << k.shape().str()
                                                                 << ", " << v.shape().str());
  bool ok = k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == q.size(3) &&
            v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == k.size(2);
  MOELAB_CHECK(ok, kOp << ": shapes do not match: q " << q.shape().str() << ", k " << k.shape().str()
                       << ", v " << v.shape().str());
  const Tensor& kp = mask.key_padding;
  if (kp.defined()) {
    MOELAB_CHECK(
        kp.dtype() == DType::i32 || kp.dtype() == DType::i64,
        kOp << ": key_padding must be i32 or i64 (nonzero = a real key), got " << dtype_name(kp.dtype()));
    MOELAB_CHECK(kp.dim() == 2 && kp.size(0) == q.size(0) && kp.size(1) == k.size(2),
                 kOp << ": key_padding must be (B, Tk) = (" << q.size(0) << ", " << k.size(2) << "), got "
                     << kp.shape().str());
  }
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
}

double scale_for(const AttnShapes& s, std::optional<double> scale) {
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(s.D, 1)));
}

// A detached kernel operand: a view as it is when the last dim has unit stride (head-layout permutes pass
// through), else a contiguous copy.
Tensor kernel_operand(const Tensor& x) {
  bool ok = x.size(3) <= 1 || x.strides()[3] == 1;
  ok = ok && x.strides()[2] >= std::max<int64_t>(x.size(3), 1) && x.strides()[0] >= 0 && x.strides()[1] >= 0;
  return ok ? x.detach() : detail::contiguous_input(x);
}

// key_padding (B, Tk) i32/i64 -> contiguous i32 with 1 for a real key, 0 for padding.
Tensor key_valid_of(const Tensor& kp) {
  if (!kp.defined()) return Tensor();
  NoGradGuard ng;
  if (kp.dtype() == DType::i32) return detail::contiguous_input(kp);
  Tensor padded = binary(BinaryOp::eq, kp, Tensor::zeros(Shape{}, kp.dtype(), kp.device()));  // i64 values
  return cast(sub(1.0, padded), DType::i32);
}

}  // namespace

// q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv)
Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionMask& mask, std::optional<double> scale) {
  AttnShapes s = check_attention(q_in, k_in, v_in, mask);
  Backend& be = backend_for(q_in.device());
  const double sc = scale_for(s, scale);
  const bool causal = mask.causal;
  Tensor q = kernel_operand(q_in), k = kernel_operand(k_in), v = kernel_operand(v_in);
  Tensor valid = key_valid_of(mask.key_padding);
  Tensor out = Tensor::empty(Shape{s.B, s.H, s.Tq, s.Dv}, q.dtype(), q.device());
  Tensor lse = Tensor::empty(Shape{s.B, s.H, s.Tq}, q.dtype(), q.device());
  be.attention_forward(q, k, v, valid, causal, sc, out, lse);
  record(out, kOp, {q_in, k_in, v_in}, [q, k, v, valid, causal, sc, lse, o = out.detach()](const Tensor& g) {
    Tensor go = kernel_operand(g);
    Tensor gq = detail::empty_like(q), gk = detail::empty_like(k), gv = detail::empty_like(v);
    backend_for(q.device()).attention_backward(q, k, v, valid, causal, sc, o, lse, go, gq, gk, gv);
    return std::vector<Tensor>{gq, gk, gv};
  });
  return out;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    std::optional<double> scale) {
  AttentionMask mask;
  mask.causal = causal;
  return scaled_dot_product_attention(q, k, v, mask, scale);
}

// Packed projections: q, k, v are strided views of qkv read in place by the kernel, the output is written
// back in token layout with one copy, and the backward writes gq, gk, gv straight into their slices of
// the qkv gradient: one autograd node where the unpacked form records eight (reshape, permute, three
// selects, attention, transpose, reshape) and allocates three zero-filled qkv-sized gradients.
// qkv: (B, T, 3 d) -> (B, T, d)
Tensor attention_packed_qkv(const Tensor& qkv_in, int64_t heads, const AttentionMask& mask,
                            std::optional<double> scale) {
  constexpr const char* op = "attention_packed_qkv";
  MOELAB_CHECK(qkv_in.dim() == 3, op << ": qkv must be (B, T, 3 d), got " << qkv_in.shape().str());
  MOELAB_CHECK(heads > 0 && qkv_in.size(2) % (3 * heads) == 0,
               op << ": the last dim of qkv " << qkv_in.shape().str() << " is not 3 x heads (" << heads
                  << ") x head size");
  const int64_t B = qkv_in.size(0), T = qkv_in.size(1), d = qkv_in.size(2) / 3, H = heads, Dh = d / H;
  Tensor qkv = detail::contiguous_input(qkv_in);
  // (B, T, 3 d) -> (B, T, 3, H, Dh); part i as (B, H, T, Dh) with unit last stride.
  auto part = [B, T, H, Dh](const Tensor& packed, int64_t i) {
    return packed.view(Shape{B, T, 3, H, Dh}).select(2, i).permute({0, 2, 1, 3});
  };
  Tensor q = part(qkv, 0), k = part(qkv, 1), v = part(qkv, 2);
  AttnShapes s = check_attention(q, k, v, mask);
  const double sc = scale_for(s, scale);
  const bool causal = mask.causal;
  Backend& be = backend_for(qkv.device());
  Tensor valid = key_valid_of(mask.key_padding);
  Tensor o = Tensor::empty(Shape{B, H, T, Dh}, qkv.dtype(), qkv.device());
  Tensor lse = Tensor::empty(Shape{B, H, T}, qkv.dtype(), qkv.device());
  be.attention_forward(q, k, v, valid, causal, sc, o, lse);
  Tensor out = Tensor::empty(Shape{B, T, d}, qkv.dtype(), qkv.device());
  Tensor out_heads = out.view(Shape{B, T, H, Dh}).permute({0, 2, 1, 3});
  be.copy(o, out_heads);  // heads back to token layout
  record(out, op, {qkv_in}, [qkv, valid, causal, sc, lse, o, B, T, d, H, Dh, part](const Tensor& g) {
    Backend& be = backend_for(qkv.device());
    Tensor gc = detail::contiguous_input(g);
    Tensor go = gc.view(Shape{B, T, H, Dh}).permute({0, 2, 1, 3});  // read in place by the kernel
    Tensor gq = Tensor::empty(Shape{B, H, T, Dh}, qkv.dtype(), qkv.device());
    Tensor gk = detail::empty_like(gq), gv = detail::empty_like(gq);
    be.attention_backward(part(qkv, 0), part(qkv, 1), part(qkv, 2), valid, causal, sc, o, lse, go, gq, gk, gv);
    Tensor gqkv = Tensor::empty(Shape{B, T, 3 * d}, qkv.dtype(), qkv.device());
    Tensor gparts[3] = {gq, gk, gv};
    for (int64_t i = 0; i < 3; ++i) {
      Tensor dst = part(gqkv, i);
      be.copy(gparts[i], dst);
    }
    return std::vector<Tensor>{gqkv};
  });
  return out;
}

// softmax(scale q k^T + bias) v with the causal mask fused in the softmax kernel and key padding as an
// additive bias of a large negative number; rows that see no key are then multiplied by 0.
Tensor detail::scaled_dot_product_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                                                     const AttentionMask& mask, std::optional<double> scale) {
  AttnShapes s = check_attention(q, k, v, mask);
  Tensor scores = matmul(mul(q, scale_for(s, scale)), k.transpose(-1, -2));  // (B, H, Tq, Tk)
  Tensor has_key;                                                            // (B, 1, Tq, 1): 1 or 0
  if (mask.key_padding.defined()) {
    Tensor valid;
    {
      NoGradGuard ng;
      valid = cast(key_valid_of(mask.key_padding), q.dtype()).reshape(Shape{s.B, 1, s.Tk, 1});
      std::vector<double> sees(static_cast<size_t>(s.Tq * s.Tk));  // the causal pattern, (Tq, Tk)
      for (int64_t i = 0; i < s.Tq; ++i)
        for (int64_t j = 0; j < s.Tk; ++j)
          sees[i * s.Tk + j] = kern::attention_sees(i, j, s.Tq, s.Tk, mask.causal, nullptr);
      Tensor pattern = Tensor::from_vector(sees, Shape{s.Tq, s.Tk}).to(q.dtype()).to(q.device());
      has_key = minimum(matmul(pattern, valid), Tensor::ones(Shape{}, q.dtype(), q.device()));
    }
    const double big = q.dtype() == DType::f32 ? 1e30 : 1e300;
    Tensor bias = mul(sub(1.0, valid.reshape(Shape{s.B, 1, 1, s.Tk})), -big);
    scores = add(scores, bias);
  }
  Tensor out = matmul(detail::softmax_last_dim(scores, false, mask.causal ? s.Tq : 0), v);
  return has_key.defined() ? mul(out, has_key) : out;
}

}  // namespace moelab
