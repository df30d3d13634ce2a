// Every op in core/ops/ops.h on every backend, against `ref` (docs/architecture.md §5): one table of op
// cases, each run over its shapes x dtypes x layouts (contiguous, transposed, sliced), forward and
// backward, compared by NMSE with a per-op bound, NaN/Inf positions compared exactly. A second table
// calls the Backend kernels directly on outputs surrounded by guard values. Adding an op = adding a row.
#include <gtest/gtest.h>
#include <omp.h>

#include "core/backend/kernel_support.h"
#include "core/helpers_backend_ops.h"
#include "core/helpers_compare.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {
namespace {

using test::compare_tensors;
using test::InputGen;
using test::Layout;

using Shapes = std::vector<Shape>;  // one shape per input
using MakeInputs = std::function<std::vector<Tensor>(InputGen&, const Shapes&)>;

struct OpCase {
  std::string name;
  std::vector<DType> dtypes;
  std::vector<Shapes> shapes;
  MakeInputs inputs;
  test::OpFn run;
  double max_nmse = 1e-11;  // for f32; f64 is held to max_nmse * 1e-14, integers to equality
  bool grad = true;         // also compare the inputs' gradients
  bool nonfinite = false;   // also run with NaN/+Inf/-Inf planted in the first float input
  bool layouts = true;      // also run transposed and sliced inputs
};

const std::vector<DType> kFloat = {DType::f32, DType::f64};
const std::vector<DType> kAll = {DType::f32, DType::f64, DType::i32, DType::i64};

// Inputs: every shape drawn with gen.real.
MakeInputs reals() {
  return [](InputGen& g, const Shapes& s) {
    std::vector<Tensor> v;
    for (const Shape& sh : s) v.push_back(g.real(sh));
    return v;
  };
}
MakeInputs positives() {
  return [](InputGen& g, const Shapes& s) {
    std::vector<Tensor> v;
    for (const Shape& sh : s) v.push_back(g.positive(sh));
    return v;
  };
}
test::OpFn one(std::function<Tensor(const std::vector<Tensor>&)> f) {
  return [f](const std::vector<Tensor>& x) { return std::vector<Tensor>{f(x)}; };
}

const Shapes kUnaryShapes[] = {{Shape{7}}, {Shape{1}}, {Shape{3, 5}}, {Shape{2, 1, 33}}, {Shape{}}};

void add_unary_rows(std::vector<OpCase>& t) {
  struct U {
    UnaryOp op;
    double alpha;
    bool positive_input, integers;
  };
  const U ops[] = {{UnaryOp::copy, 0, false, true},          {UnaryOp::neg, 0, false, true},
                   {UnaryOp::exp, 0, false, false},          {UnaryOp::log, 0, true, false},
                   {UnaryOp::sqrt, 0, true, false},          {UnaryOp::rsqrt, 0, true, false},
                   {UnaryOp::tanh, 0, false, false},         {UnaryOp::sigmoid, 0, false, false},
                   {UnaryOp::relu, 0, false, true},          {UnaryOp::gelu_tanh, 0, false, false},
                   {UnaryOp::gelu_erf, 0, false, false},     {UnaryOp::silu, 0, false, false},
                   {UnaryOp::abs, 0, false, true},           {UnaryOp::square, 0, false, true},
                   {UnaryOp::softplus, 0, false, false},     {UnaryOp::add_scalar, 0.5, false, true},
                   {UnaryOp::mul_scalar, 1.5, false, true},  {UnaryOp::pow_scalar, 2.5, true, false},
                   {UnaryOp::rsub_scalar, 1.0, false, true}, {UnaryOp::rdiv_scalar, 2.0, true, false},
                   {UnaryOp::huber, 1.0, false, false},      {UnaryOp::leaky_relu, 0.1, false, false},
                   {UnaryOp::clamp_min, 0.2, false, false}};
  for (const U& u : ops) {
    OpCase c;
    c.name = std::string("unary_") + unary_op_name(u.op);
    c.dtypes = u.integers ? kAll : kFloat;
    c.shapes.assign(std::begin(kUnaryShapes), std::end(kUnaryShapes));
    c.inputs = u.positive_input ? positives() : reals();
    c.run = one([u](const std::vector<Tensor>& x) { return unary(u.op, x[0], u.alpha); });
    c.nonfinite = true;
    if (u.op == UnaryOp::gelu_tanh) c.max_nmse = 1e-10;  // the cubic inside tanh loses bits in f32
    t.push_back(c);
  }
}

void add_binary_rows(std::vector<OpCase>& t) {
  const std::vector<Shapes> shapes = {{Shape{4, 5}, Shape{4, 5}}, {Shape{3, 1, 5}, Shape{4, 1}},
                                      {Shape{1}, Shape{7}},       {Shape{2, 3, 33}, Shape{33}},
                                      {Shape{}, Shape{3}},        {Shape{6, 1}, Shape{1, 5}}};
  struct B {
    BinaryOp op;
    bool integers, grad, grid;
  };
  const B ops[] = {{BinaryOp::add, true, true, false},     {BinaryOp::sub, true, true, false},
                   {BinaryOp::mul, true, true, false},     {BinaryOp::div, false, true, false},
                   {BinaryOp::maximum, true, true, false}, {BinaryOp::minimum, true, true, false},
                   {BinaryOp::eq, true, false, true},      {BinaryOp::gt, true, false, true}};
  for (const B& b : ops) {
    OpCase c;
    c.name = std::string("binary_") + binary_op_name(b.op);
    c.dtypes = b.integers ? kAll : kFloat;
    c.shapes = shapes;
    BinaryOp op = b.op;
    c.inputs = [op, grid = b.grid](InputGen& g, const Shapes& s) {
      if (grid) return std::vector<Tensor>{g.grid(s[0]), g.grid(s[1])};
      return std::vector<Tensor>{g.real(s[0]), op == BinaryOp::div ? g.positive(s[1]) : g.real(s[1])};
    };
    c.run = one([op](const std::vector<Tensor>& x) { return binary(op, x[0], x[1]); });
    c.grad = b.grad;
    c.nonfinite = true;
    t.push_back(c);
  }
}

// q, k, v reals and, with `padded`, a key_padding (B, Tk) i64 whose item b follows pattern b % 4: all
// real; the first half real; none real (every query of that item sees nothing); every second key real.
// Nonzero entries are 3, not 1 (any nonzero marks a real key). head_layout: shapes are (B, T, H, D).
MakeInputs attention_inputs(bool padded, bool head_layout = false) {
  return [padded, head_layout](InputGen& g, const Shapes& s) {
    std::vector<Tensor> v = {g.real(s[0]), g.real(s[1]), g.real(s[2])};
    if (padded) {
      int64_t B = s[0][0], Tk = s[1][head_layout ? 1 : 2];
      std::vector<int64_t> kp(static_cast<size_t>(B * Tk));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < Tk; ++j) {
          int pattern = static_cast<int>(b % 4);
          bool real = pattern == 0 || (pattern == 1 && j < (Tk + 1) / 2) || (pattern == 3 && j % 2 == 1);
          kp[static_cast<size_t>(b * Tk + j)] = real ? 3 : 0;
        }
      v.push_back(Tensor::from_vector(kp, Shape{B, Tk}));
    }
    return v;
  };
}
AttentionMask attention_mask(bool causal, bool padded, const std::vector<Tensor>& x) {
  AttentionMask m;
  m.causal = causal;
  if (padded) m.key_padding = x[3];
  return m;
}

std::vector<OpCase> build_table() {
  std::vector<OpCase> t;
  add_unary_rows(t);
  add_binary_rows(t);
  const std::vector<Shapes> red = {{Shape{7, 1, 5}}, {Shape{3, 4, 5}}, {Shape{1, 1, 1}}, {Shape{2, 65, 3}}};
  auto row = [&](std::string name, std::vector<DType> dt, std::vector<Shapes> sh, MakeInputs in,
                 test::OpFn fn) {
    OpCase c;
    c.name = std::move(name);
    c.dtypes = std::move(dt);
    c.shapes = std::move(sh);
    c.inputs = std::move(in);
    c.run = std::move(fn);
    t.push_back(c);
    return &t.back();
  };
  // ---- reductions ----
  row("sum_dim0", kAll, red, reals(), one([](auto& x) { return sum(x[0], {0}); }))->nonfinite = true;
  row("sum_dims02_keepdim", kAll, red, reals(), one([](auto& x) { return sum(x[0], {0, 2}, true); }));
  row("sum_last", kAll, red, reals(), one([](auto& x) { return sum(x[0], {-1}); }))->nonfinite = true;
  row("sum_all", kAll, red, reals(), one([](auto& x) { return sum(x[0]); }));
  row("mean_dim1", kFloat, red, reals(), one([](auto& x) { return mean(x[0], {1}); }));
  row("max_dim1", kAll, red, reals(), [](auto& x) {
    Tensor idx;
    Tensor v = max(x[0], 1, false, &idx);
    return std::vector<Tensor>{v, idx};
  })->nonfinite = true;
  row("max_all", kFloat, red, reals(), one([](auto& x) { return max(x[0]); }));
  row("argmax_last", kAll, red, reals(), one([](auto& x) { return argmax(x[0], -1, true); }))->grad = false;
  // ---- linear algebra ----
  const std::vector<Shapes> mm = {{Shape{5, 7}, Shape{7, 3}},       {Shape{1, 4}, Shape{4, 1}},
                                  {Shape{2, 3, 4, 5}, Shape{5, 6}}, {Shape{2, 1, 4, 5}, Shape{3, 5, 2}},
                                  {Shape{7}, Shape{7, 3}},          {Shape{4, 7}, Shape{7}},
                                  {Shape{3, 4, 5}, Shape{3, 5, 6}}, {Shape{4, 5}, Shape{2, 5, 3}}};
  row("matmul", kFloat, mm, reals(), one([](auto& x) { return matmul(x[0], x[1]); }));
  const std::vector<Shapes> lin = {{Shape{2, 3, 5}, Shape{4, 5}, Shape{4}},
                                   {Shape{1, 1}, Shape{1, 1}, Shape{1}},
                                   {Shape{9, 17}, Shape{6, 17}, Shape{6}}};
  row("linear", kFloat, lin, reals(), one([](auto& x) { return linear(x[0], x[1], x[2]); }));
  row("linear_nobias", kFloat, lin, reals(), one([](auto& x) { return linear(x[0], x[1]); }));
  // ---- shape ops ----
  const std::vector<Shapes> s3 = {{Shape{2, 3, 4}}, {Shape{1, 5, 1}}, {Shape{3, 1, 7}}};
  row("reshape", kAll, s3, reals(), one([](auto& x) { return reshape(x[0], Shape{-1, x[0].size(-1)}); }));
  row("permute_contiguous", kAll, s3, reals(), one([](auto& x) {
        return contiguous(permute(x[0], {2, 0, 1}));
      }));
  row("transpose", kAll, s3, reals(), one([](auto& x) { return contiguous(transpose(x[0], 0, 2)); }));
  row("slice_step2", kAll, s3, reals(), one([](auto& x) { return contiguous(slice(x[0], 2, 0, -1, 2)); }));
  row("expand", kAll, {{Shape{3, 1}}, {Shape{1, 1}}, {Shape{1, 4}}}, reals(), one([](auto& x) {
        return contiguous(expand(x[0], Shape{2, 3, 4}));
      }));
  row("concat_dim1", kAll, {{Shape{2, 3}, Shape{2, 1}, Shape{2, 4}}, {Shape{1, 1}, Shape{1, 1}, Shape{1, 2}}},
      reals(), one([](auto& x) {
        return concat({x[0], x[1], x[2]}, 1);
      }));
  row("stack_dim0", kAll, {{Shape{2, 3}, Shape{2, 3}}, {Shape{1}, Shape{1}}}, reals(), one([](auto& x) {
        return stack({x[0], x[1]}, 0);
      }));
  row("split_dim0", kAll, {{Shape{5, 3}}}, reals(), [](auto& x) { return split(x[0], {2, 0, 3}, 0); });
  row("cast_f64", kAll, s3, reals(), one([](auto& x) { return cast(x[0], DType::f64); }));
  row("cast_i32", kFloat, s3, reals(), one([](auto& x) { return cast(x[0], DType::i32); }))->grad = false;
  // ---- softmax family ----
  const std::vector<Shapes> sm = {
      {Shape{4, 7}}, {Shape{1, 1}}, {Shape{3, 5, 9}}, {Shape{2, 1, 6}}, {Shape{5}}};
  for (int dim : {-1, 0, 1}) {
    std::vector<Shapes> shapes = sm;
    if (dim == 1) shapes.pop_back();  // the 1-d case has no dim 1
    std::string d = dim < 0 ? "last" : std::to_string(dim);
    row("softmax_dim" + d, kFloat, shapes, reals(), one([dim](auto& x) { return softmax(x[0], dim); }))
        ->nonfinite = true;
    row("log_softmax_dim" + d, kFloat, shapes, reals(),
        one([dim](auto& x) { return log_softmax(x[0], dim); }))
        ->nonfinite = true;
    row("logsumexp_dim" + d, kFloat, shapes, reals(),
        one([dim](auto& x) { return logsumexp(x[0], dim, dim == 0); }))
        ->nonfinite = true;
  }
  for (bool log : {false, true})
    row(log ? "log_softmax_causal" : "softmax_causal", kFloat,
        {{Shape{2, 4, 4}}, {Shape{3, 2, 5}}, {Shape{1, 3, 2}}}, reals(),
        one([log](auto& x) { return detail::softmax_last_dim(x[0], log, x[0].size(-2)); }));
  // ---- normalization ----
  const std::vector<Shapes> ln = {{Shape{4, 7}, Shape{7}, Shape{7}},
                                  {Shape{1, 1}, Shape{1}, Shape{1}},
                                  {Shape{3, 5, 16}, Shape{16}, Shape{16}},
                                  {Shape{33}, Shape{33}, Shape{33}}};
  row("layernorm", kFloat, ln, reals(), one([](auto& x) { return layernorm(x[0], x[1], x[2], 1e-5); }))
      ->nonfinite = true;
  row("layernorm_plain", kFloat, ln, reals(),
      one([](auto& x) { return layernorm(x[0], Tensor(), Tensor(), 1e-3); }));
  row("layernorm_gamma_only", kFloat, ln, reals(),
      one([](auto& x) { return layernorm(x[0], x[1], Tensor()); }));
  // ---- indexing ----
  auto with_index = [](int data_inputs, int64_t limit, Shape index_shape, DType it) {
    return [=](InputGen& g, const Shapes& s) {
      std::vector<Tensor> v;
      for (int i = 0; i < data_inputs; ++i) v.push_back(g.real(s[i]));
      v.push_back(g.index(index_shape, limit, it));
      return v;
    };
  };
  row("embedding", kFloat, {{Shape{10, 6}}}, with_index(1, 10, Shape{3, 4}, DType::i64),
      one([](auto& x) { return embedding(x[0], x[1]); }));
  row("embedding_i32_ids", kFloat, {{Shape{3, 1}}}, with_index(1, 3, Shape{7}, DType::i32),
      one([](auto& x) { return embedding(x[0], x[1]); }));
  row("index_select", kAll, {{Shape{9, 3, 2}}}, with_index(1, 9, Shape{5}, DType::i64),
      one([](auto& x) { return index_select(x[0], x[1]); }));
  row("index_select_rows1", kAll, {{Shape{1, 4}}}, with_index(1, 1, Shape{3}, DType::i32),
      one([](auto& x) { return index_select(x[0], x[1]); }));
  row("index_add", kAll, {{Shape{6, 4}}}, with_index(1, 5, Shape{6}, DType::i64),
      one([](auto& x) { return index_add(x[0], x[1], 5); }));
  row("index_add_3d", kFloat, {{Shape{40, 3, 5}}}, with_index(1, 7, Shape{40}, DType::i32),
      one([](auto& x) { return index_add(x[0], x[1], 7); }));
  row("gather_dim1", kAll, {{Shape{4, 6}}}, with_index(1, 6, Shape{4, 3}, DType::i64),
      one([](auto& x) { return gather(x[0], 1, x[1]); }));
  row("gather_dim0", kAll, {{Shape{4, 6}}}, with_index(1, 4, Shape{2, 6}, DType::i64),
      one([](auto& x) { return gather(x[0], 0, x[1]); }));
  row("gather_smaller_index", kFloat, {{Shape{5, 6, 3}}}, with_index(1, 6, Shape{3, 4, 2}, DType::i32),
      one([](auto& x) { return gather(x[0], 1, x[1]); }));
  row("scatter_add_dim0", kAll, {{Shape{5, 4}, Shape{7, 4}}}, with_index(2, 5, Shape{7, 4}, DType::i64),
      one([](auto& x) { return scatter_add(x[0], 0, x[2], x[1]); }));
  row("scatter_add_dim1_larger_src", kFloat, {{Shape{3, 4}, Shape{3, 9}}},
      with_index(2, 4, Shape{3, 6}, DType::i64),
      one([](auto& x) { return scatter_add(x[0], 1, x[2], x[1]); }));
  for (int64_t k : {1, 3})
    row("topk_k" + std::to_string(k), kFloat, {{Shape{4, 9}}, {Shape{2, 3, 6}}, {Shape{3}}}, reals(),
        [k](auto& x) {
          Tensor idx;
          Tensor v = topk(x[0], k, &idx);
          return std::vector<Tensor>{v, idx};
        })
        ->nonfinite = true;
  row("topk_all", kFloat, {{Shape{1, 5}}, {Shape{2, 1}}}, reals(),
      one([](auto& x) { return topk(x[0], x[0].size(-1), nullptr); }));
  // ---- convolution ----
  struct Conv {
    Shape x, w;
    int64_t stride, pad;
  };
  for (const Conv& cv :
       {Conv{Shape{2, 3, 7, 6}, Shape{4, 3, 3, 3}, 1, 1}, Conv{Shape{2, 3, 7, 6}, Shape{4, 3, 3, 3}, 2, 0},
        Conv{Shape{1, 2, 5, 5}, Shape{3, 2, 1, 1}, 1, 0}, Conv{Shape{1, 1, 5, 5}, Shape{2, 1, 5, 5}, 3, 2},
        Conv{Shape{2, 1, 4, 4}, Shape{2, 1, 2, 2}, 2, 0}}) {
    std::string n =
        "conv2d_s" + std::to_string(cv.stride) + "p" + std::to_string(cv.pad) + "k" + std::to_string(cv.w[2]);
    int64_t st = cv.stride, pd = cv.pad;
    row(n, kFloat, {{cv.x, cv.w, Shape{cv.w[0]}}}, reals(),
        one([st, pd](auto& x) { return conv2d(x[0], x[1], x[2], st, pd); }));
  }
  row("conv2d_nobias", kFloat, {{Shape{2, 3, 6, 6}, Shape{2, 3, 3, 3}}}, reals(),
      one([](auto& x) { return conv2d(x[0], x[1], Tensor(), 1, 1); }));
  // ---- losses ----
  for (double smoothing : {0.0, 0.1}) {
    auto ce_inputs = [](Shape logits, DType it) {
      return [=](InputGen& g, const Shapes&) {
        Shape lead = logits;
        lead.erase(lead.size() - 1);
        Tensor t = g.index(lead, logits.back(), it);
        std::vector<int64_t> tv = t.to_vector<int64_t>();
        tv[0] = -100;  // one ignored row
        return std::vector<Tensor>{g.real(logits), Tensor::from_vector(tv, lead).to(it)};
      };
    };
    std::string s = smoothing > 0 ? "_smooth" : "";
    row("cross_entropy" + s, kFloat, {{}}, ce_inputs(Shape{6, 5}, DType::i64),
        one([smoothing](auto& x) { return cross_entropy(x[0], x[1], smoothing); }))
        ->nonfinite = true;
    row("cross_entropy_3d" + s, kFloat, {{}}, ce_inputs(Shape{2, 3, 11}, DType::i32),
        one([smoothing](auto& x) { return cross_entropy(x[0], x[1], smoothing); }));
  }
  // InfoNCE: log scale 1.2 (s = 3.3, below the clamp) and 5 (s = 148, clamped at 100); N = 1 too
  for (double log_scale : {1.2, 5.0})
    row(std::string("contrastive_loss") + (log_scale > 4.6 ? "_clamped" : ""), kFloat,
        {{Shape{6, 4}, Shape{6, 4}}, {Shape{1, 3}, Shape{1, 3}}, {Shape{9, 17}, Shape{9, 17}}},
        [log_scale](InputGen& g, const Shapes& s) {
          return std::vector<Tensor>{g.real(s[0]), g.real(s[1]), Tensor::scalar(log_scale)};
        },
        one([](auto& x) { return contrastive_loss(x[0], x[1], cast(x[2], x[0].dtype())); }))
        // logits up to 100 * 4 * 4 in f32: the gradients' rounding is that of values near 1e3
        ->max_nmse = log_scale > 4.6 ? 1e-10 : 1e-11;
  // NegCLIP: M extra text negatives of the image->text direction (M = 7, 4, 12). Not N = 1: with one pair
  // the loss can be ~1e-8 (one saturated softmax), below f32's resolution, where NMSE means nothing
  for (double log_scale : {1.2, 5.0})
    row(std::string("contrastive_loss_with_negatives") + (log_scale > 4.6 ? "_clamped" : ""), kFloat,
        {{Shape{6, 4}, Shape{6, 4}, Shape{7, 4}}, {Shape{3, 5}, Shape{3, 5}, Shape{4, 5}},
         {Shape{9, 17}, Shape{9, 17}, Shape{12, 17}}},
        [log_scale](InputGen& g, const Shapes& s) {
          return std::vector<Tensor>{g.real(s[0]), g.real(s[1]), g.real(s[2]), Tensor::scalar(log_scale)};
        },
        one([](auto& x) { return contrastive_loss_with_negatives(x[0], x[1], x[2], cast(x[3], x[0].dtype())); }))
        // as above, f32 logits near 1e3 at the clamp, now over N + M candidates (f64 agrees to ~1e-28)
        ->max_nmse = log_scale > 4.6 ? 1e-9 : 1e-11;
  row("mse_loss", kFloat, {{Shape{4, 5}, Shape{4, 5}}, {Shape{1}, Shape{1}}}, reals(),
      one([](auto& x) { return mse_loss(x[0], x[1]); }));
  row("huber_loss", kFloat, {{Shape{4, 5}, Shape{4, 5}}, {Shape{7}, Shape{7}}}, reals(),
      one([](auto& x) { return huber_loss(x[0], x[1], 0.7); }));
  // ---- random (the same counters on every backend: results must be identical) ----
  row("rand_uniform", kFloat, {{Shape{5, 7}}, {Shape{1}}}, reals(), one([](auto& x) {
        RngStream rng(42, "test");
        rng.advance(3);
        return rand_uniform(x[0].shape(), -1, 3, rng, x[0].dtype());
      }))
      ->max_nmse = 0;
  row("rand_normal", kFloat, {{Shape{5, 7}}, {Shape{1}}}, reals(), one([](auto& x) {
        RngStream rng(42, "test");
        return rand_normal(x[0].shape(), 0.5, 2, rng, x[0].dtype());
      }))
      ->max_nmse = 0;
  row("dropout", kFloat, {{Shape{5, 7}}, {Shape{2, 1, 9}}}, reals(), one([](auto& x) {
        RngStream rng(3, "dropout");
        return dropout(x[0], 0.3, true, rng);
      }))
      ->max_nmse = 0;
  // ---- attention (fused kernels; inputs q, k, v, then key_padding when the row has one) ----
  const std::vector<Shapes> attn = {
      {Shape{2, 3, 5, 4}, Shape{2, 3, 7, 4}, Shape{2, 3, 7, 3}},      // Tq < Tk
      {Shape{4, 2, 6, 8}, Shape{4, 2, 6, 8}, Shape{4, 2, 6, 8}},      // square; padding patterns 0..3
      {Shape{3, 2, 9, 1}, Shape{3, 2, 4, 1}, Shape{3, 2, 4, 2}},      // D = 1, Tq > Tk: causal empty rows
      {Shape{1, 1, 133, 5}, Shape{1, 1, 70, 5}, Shape{1, 1, 70, 3}},  // several partial tiles, one head
      {Shape{2, 2, 67, 3}, Shape{2, 2, 131, 3}, Shape{2, 2, 131, 7}}};
  for (int kind = 0; kind < 4; ++kind) {
    const bool causal = kind & 1, padded = kind & 2;
    const char* names[] = {"sdpa", "sdpa_causal", "sdpa_padding", "sdpa_causal_padding"};
    row(names[kind], kFloat, attn, attention_inputs(padded), one([causal, padded](auto& x) {
          return scaled_dot_product_attention(x[0], x[1], x[2], attention_mask(causal, padded, x));
        }));
  }
  // q, k, v drawn as (B, T, H, D) and read through head-layout views (strided, no copy)
  row("sdpa_head_layout_causal_padding", kFloat,
      {{Shape{2, 7, 3, 4}, Shape{2, 9, 3, 4}, Shape{2, 9, 3, 5}},
       {Shape{4, 66, 2, 3}, Shape{4, 66, 2, 3}, Shape{4, 66, 2, 3}}},
      attention_inputs(true, true), one([](auto& x) {
        auto heads = [](const Tensor& t) { return permute(t, {0, 2, 1, 3}); };
        return scaled_dot_product_attention(heads(x[0]), heads(x[1]), heads(x[2]),
                                            attention_mask(true, true, x));
      }));
  row("sdpa_scaled", kFloat, {{Shape{1, 1, 3, 2}, Shape{1, 1, 2, 2}, Shape{1, 1, 2, 2}}}, reals(),
      one([](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true, 0.3); }));
  return t;
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> t = build_table();
  return t;
}

double bound_for(const OpCase& c, DType t) {
  if (!is_floating(t)) return 0;
  return t == DType::f64 ? c.max_nmse * 1e-14 : c.max_nmse;
}

// Skips the cuda instance when there is no usable device.
bool backend_present(BackendKind k) { return k != BackendKind::cuda || cuda_backend().available(); }
// Every non-ref backend that can run here: cpu, and cuda when a device is present.
std::vector<BackendKind> backends_under_test() {
  std::vector<BackendKind> b = {BackendKind::cpu};
  if (cuda_backend().available()) b.push_back(BackendKind::cuda);
  return b;
}

class BackendOps : public ::testing::TestWithParam<std::tuple<int, BackendKind>> {};

TEST_P(BackendOps, MatchesRef) {
  const OpCase& c = op_table()[std::get<0>(GetParam())];
  BackendKind kind = std::get<1>(GetParam());
  if (!backend_present(kind)) GTEST_SKIP() << "cuda backend: skipped (no device / built without CUDA)";
  int runs = 0, unsupported = 0;
  uint64_t seed = 1;
  double worst_f32 = 0, worst_f64 = 0;  // the largest NMSE seen, printed for tuning the bounds
  for (DType dt : c.dtypes)
    for (const Shapes& shapes : c.shapes)
      for (Layout layout : {Layout::contiguous, Layout::transposed, Layout::sliced})
        for (bool nonfinite : {false, true}) {
          if ((!c.layouts && layout != Layout::contiguous) ||
              (nonfinite && !(c.nonfinite && is_floating(dt))))
            continue;
          std::string where = std::string(dtype_name(dt)) + " " + test::layout_name(layout) +
                              (nonfinite ? " with NaN/Inf" : "") + " shapes";
          for (const Shape& s : shapes) where += " " + s.str();
          SCOPED_TRACE(c.name + ": " + where);
          InputGen gen(dt, layout, seed++);
          std::vector<Tensor> inputs = c.inputs(gen, shapes);
          if (nonfinite)
            for (Tensor& x : inputs)
              if (x.defined() && is_floating(x.dtype())) {
                test::plant_nonfinite(x);
                break;
              }
          bool grad = c.grad && is_floating(dt);
          // The reference run fixes the upstream gradients (random, one per float output).
          test::OpRun ref = test::run_on_backend(c.run, inputs, BackendKind::ref, nullptr);
          std::vector<Tensor> upstream;
          RngStream up_rng(seed, "upstream");
          for (const Tensor& o : ref.outputs)
            upstream.push_back(grad && o.defined() && is_floating(o.dtype())
                                   ? rand_normal(o.shape(), 0, 1, up_rng, o.dtype())
                                   : Tensor());
          if (grad) ref = test::run_on_backend(c.run, inputs, BackendKind::ref, &upstream);
          test::OpRun got;
          try {
            got = test::run_on_backend(c.run, inputs, kind, grad ? &upstream : nullptr);
          } catch (const NotSupported& e) {
            // ref ran this case: the cpu backend must too; cuda may lack a kernel (and reports it).
            if (kind == BackendKind::cpu) ADD_FAILURE() << "the cpu backend lacks a kernel that ref has: " << e.what();
            ++unsupported;
            continue;
          }
          ++runs;
          ASSERT_EQ(got.outputs.size(), ref.outputs.size());
          auto check = [&](const Tensor& g, const Tensor& r, const std::string& what) {
            if (!g.defined() && !r.defined()) return;
            EXPECT_EQ(compare_tensors(g, r, bound_for(c, r.defined() ? r.dtype() : dt)), "") << what;
            if (g.defined() && r.defined() && g.shape() == r.shape() && is_floating(r.dtype())) {
              double& worst = r.dtype() == DType::f64 ? worst_f64 : worst_f32;
              worst = std::max(worst, test::nmse(g, r));
            }
          };
          for (size_t i = 0; i < ref.outputs.size(); ++i)
            check(got.outputs[i], ref.outputs[i], "output " + std::to_string(i));
          for (size_t i = 0; i < ref.grads.size(); ++i)
            check(got.grads[i], ref.grads[i], "gradient of input " + std::to_string(i));
        }
  std::printf("  %-28s %-4s %3d runs, largest NMSE f32 %.1e, f64 %.1e\n", c.name.c_str(), backend_name(kind),
              runs, worst_f32, worst_f64);
  if (unsupported > 0)
    std::printf("  %s on %s: %d of %d runs not supported by the backend\n", c.name.c_str(),
                backend_name(kind), unsupported, unsupported + runs);
  if (runs == 0 && unsupported > 0) GTEST_SKIP() << c.name << " is not supported on " << backend_name(kind);
  EXPECT_GT(runs, 0);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<int, BackendKind>>& info) {
  std::string n = op_table()[std::get<0>(info.param)].name + "_" + backend_name(std::get<1>(info.param));
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Ops, BackendOps,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(op_table().size())),
                                            ::testing::ValuesIn(backends_under_test())),
                         case_name);

// ---- kernel level: Backend kernels called directly, outputs inside guard values ----

using test::GuardedGen;
using KernelFn = std::function<std::vector<Tensor>(Backend&, GuardedGen&)>;

struct KernelCase {
  std::string name;
  std::vector<DType> dtypes;
  KernelFn run;
  double max_nmse = 1e-11;
};

std::vector<KernelCase> build_kernel_table() {
  std::vector<KernelCase> t;
  auto row = [&](std::string n, std::vector<DType> dt, KernelFn f) {
    t.push_back({std::move(n), std::move(dt), f});
  };
  row("fill", kAll, [](Backend& b, GuardedGen& g) {
    Tensor o = g.out(Shape{5, 3}, g.dtype());
    b.fill(o, 3.0);
    return std::vector<Tensor>{o};
  });
  row("copy_strided", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{4, 6}), o = g.out(Shape{6, 4}, g.dtype());
    b.copy(x.transpose(0, 1), o);
    return std::vector<Tensor>{o};
  });
  row("unary_gelu", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{37}), o = g.out(Shape{37}, g.dtype()), gx = g.out(Shape{37}, g.dtype());
    b.unary(UnaryOp::gelu_tanh, x, o, 0);
    b.unary_backward(UnaryOp::gelu_tanh, x, o, g.in(Shape{37}), gx, 0);
    return std::vector<Tensor>{o, gx};
  });
  row("binary_broadcast", kAll, [](Backend& b, GuardedGen& g) {
    Tensor a = g.in(Shape{3, 5}), c = g.in(Shape{5}), o = g.out(Shape{3, 5}, g.dtype());
    b.binary(BinaryOp::mul, a, Tensor::view_of(c, Shape{3, 5}, Strides{0, 1}, c.offset()), o);
    return std::vector<Tensor>{o};
  });
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max})
    row(op == ReduceOp::sum ? "reduce_sum" : "reduce_max", kFloat, [op](Backend& b, GuardedGen& g) {
      Tensor x = g.in(Shape{3, 70, 5}), o = g.out(Shape{3, 5}, g.dtype()),
             idx = g.out(Shape{3, 5}, DType::i64);
      b.reduce(op, x, 3, 70, 5, o, op == ReduceOp::max ? &idx : nullptr);
      return op == ReduceOp::max ? std::vector<Tensor>{o, idx} : std::vector<Tensor>{o};
    });
  row("matmul_beta", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor a = g.in(Shape{2, 5, 3}), c = g.in(Shape{1, 4, 5}), o = g.out(Shape{2, 3, 4}, g.dtype());
    b.fill(o, 1.0);
    b.matmul(a, c, o, true, true, 0.5, 2.0);
    return std::vector<Tensor>{o};
  });
  for (bool log : {false, true})
    row(log ? "log_softmax_causal" : "softmax_causal", kFloat, [log](Backend& b, GuardedGen& g) {
      Tensor x = g.in(Shape{6, 5}), y = g.out(Shape{6, 5}, g.dtype()), gx = g.out(Shape{6, 5}, g.dtype());
      Tensor lse = g.out(Shape{6}, g.dtype());
      b.softmax(x, y, log, 3);  // 3 queries per block, 5 keys: row r keeps keys j <= r % 3 + 2
      b.softmax_backward(y, g.in(Shape{6, 5}), gx, log);
      b.logsumexp(x, lse);
      return std::vector<Tensor>{y, gx, lse};
    });
  row("attention_fused", kFloat, [](Backend& b, GuardedGen& g) {
    // B 2, H 2, Tq 5, Tk 7, D 3, Dv 4; causal, and item 1 has keys 0 and 3 padded
    Tensor q = g.in(Shape{2, 2, 5, 3}), k = g.in(Shape{2, 2, 7, 3}), v = g.in(Shape{2, 2, 7, 4});
    Tensor valid =
        g.in_values(Tensor::from_vector<int32_t>({1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1}, Shape{2, 7}));
    Tensor out = g.out(Shape{2, 2, 5, 4}, g.dtype()), lse = g.out(Shape{2, 2, 5}, g.dtype());
    b.attention_forward(q, k, v, valid, true, 0.7, out, lse);
    Tensor gq = g.out(Shape{2, 2, 5, 3}, g.dtype()), gk = g.out(Shape{2, 2, 7, 3}, g.dtype()),
           gv = g.out(Shape{2, 2, 7, 4}, g.dtype());
    b.attention_backward(q, k, v, valid, true, 0.7, out, lse, g.in(Shape{2, 2, 5, 4}), gq, gk, gv);
    return std::vector<Tensor>{out, lse, gq, gk, gv};
  });
  row("layernorm", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{5, 9}), gm = g.in(Shape{9}), bt = g.in(Shape{9});
    Tensor y = g.out(Shape{5, 9}, g.dtype()), mu = g.out(Shape{5}, g.dtype()),
           rs = g.out(Shape{5}, g.dtype());
    b.layernorm(x, gm, bt, 1e-5, y, mu, rs);
    Tensor gx = g.out(Shape{5, 9}, g.dtype()), gg = g.out(Shape{9}, g.dtype()),
           gb = g.out(Shape{9}, g.dtype());
    b.layernorm_backward(x, gm, mu, rs, g.in(Shape{5, 9}), gx, gg, gb);
    return std::vector<Tensor>{y, mu, rs, gx, gg, gb};
  });
  row("gather_scatter", kAll, [](Backend& b, GuardedGen& g) {
    Tensor src = g.in(Shape{2, 4, 3}), idx = g.in_index(Shape{2, 6, 3}, 4),
           o = g.out(Shape{2, 6, 3}, g.dtype());
    b.gather(src, idx, 2, 4, 6, 3, o);
    Tensor acc = g.out_zeros(Shape{2, 4, 3}, g.dtype());
    b.scatter_add(g.in(Shape{2, 6, 3}), idx, 2, 4, 6, 3, acc);
    return std::vector<Tensor>{o, acc};
  });
  row("index_rows", kAll, [](Backend& b, GuardedGen& g) {
    Tensor src = g.in(Shape{5, 7}), idx = g.in_index(Shape{9}, 5, DType::i32),
           o = g.out(Shape{9, 7}, g.dtype());
    b.index_select_rows(src, idx, o);
    Tensor acc = g.out_zeros(Shape{5, 7}, g.dtype());
    b.index_add_rows(g.in(Shape{9, 7}), idx, acc);
    return std::vector<Tensor>{o, acc};
  });
  row("topk", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{4, 11}), v = g.out(Shape{4, 3}, g.dtype()), i = g.out(Shape{4, 3}, DType::i64);
    b.topk(x, 3, v, i);
    return std::vector<Tensor>{v, i};
  });
  row("im2col_col2im", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{2, 5, 6}), cols = g.out(Shape{2 * 3 * 3, 3 * 3}, g.dtype());
    b.im2col(x, 3, 3, 2, 1, cols);
    Tensor gx = g.out_zeros(Shape{2, 5, 6}, g.dtype());
    b.col2im(g.in(Shape{18, 9}), 3, 3, 2, 1, gx);
    return std::vector<Tensor>{cols, gx};
  });
  row("cross_entropy", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor x = g.in(Shape{5, 7}), t = g.in_values(Tensor::from_vector<int64_t>({3, -100, 0, 6, 2}, Shape{5}));
    Tensor loss = g.out(Shape{5}, g.dtype()), gl = g.out(Shape{5, 7}, g.dtype());
    b.cross_entropy(x, t, 0.1, -100, loss);
    b.cross_entropy_backward(x, t, g.in(Shape{5}), 0.1, -100, gl);
    return std::vector<Tensor>{loss, gl};
  });
  row("random", kFloat, [](Backend& b, GuardedGen& g) {
    Tensor u = g.out(Shape{33}, g.dtype()), n = g.out(Shape{33}, g.dtype()), m = g.out(Shape{33}, g.dtype());
    b.random_uniform(u, 99, 5, -1, 1);
    b.random_normal(n, 99, 7, 0, 1);
    b.dropout_mask(m, 99, 11, 0.25);
    return std::vector<Tensor>{u, n, m};
  });
  return t;
}

const std::vector<KernelCase>& kernel_table() {
  static const std::vector<KernelCase> t = build_kernel_table();
  return t;
}

class BackendKernels : public ::testing::TestWithParam<std::tuple<int, BackendKind>> {};

TEST_P(BackendKernels, GuardsHoldAndMatchRef) {
  const KernelCase& c = kernel_table()[std::get<0>(GetParam())];
  BackendKind kind = std::get<1>(GetParam());
  if (!backend_present(kind)) GTEST_SKIP() << "cuda backend: skipped (no device / built without CUDA)";
  Backend& be = kind == BackendKind::cuda ? cuda_backend() : cpu_backend();
  Device dev = kind == BackendKind::cuda ? Device::cuda() : Device::cpu();
  for (DType dt : c.dtypes) {
    SCOPED_TRACE(c.name + " " + std::string(dtype_name(dt)));
    GuardedGen gref(dt, Device::cpu(), 5), ggot(dt, dev, 5);
    std::vector<Tensor> ref = c.run(ref_backend(), gref);
    EXPECT_EQ(gref.check_guards(), "") << "on the ref backend";
    std::vector<Tensor> got;
    try {
      got = c.run(be, ggot);
    } catch (const NotSupported& e) {
      std::printf("  %s: %s\n", c.name.c_str(), e.what());
      continue;
    }
    EXPECT_EQ(ggot.check_guards(), "") << "on the " << backend_name(kind) << " backend";
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      double bound = is_floating(ref[i].dtype()) ? (dt == DType::f64 ? c.max_nmse * 1e-14 : c.max_nmse) : 0;
      EXPECT_EQ(compare_tensors(got[i].to(Device::cpu()), ref[i], bound), "") << "output " << i;
    }
  }
}

std::string kernel_case_name(const ::testing::TestParamInfo<std::tuple<int, BackendKind>>& info) {
  std::string n = kernel_table()[std::get<0>(info.param)].name + "_" + backend_name(std::get<1>(info.param));
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Kernels, BackendKernels,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(kernel_table().size())),
                                            ::testing::ValuesIn(backends_under_test())),
                         kernel_case_name);

// Backend::supports, probed per kernel and dtype: every kernel runs on ref in float, and the cpu backend
// runs everything ref runs.
TEST(BackendSupport, CpuCoversEveryKernelRefHas) {
  int covered = 0;
  for (Kernel k : all_kernels()) {
    for (DType dt : {DType::f32, DType::f64})
      EXPECT_TRUE(ref_backend().supports(k, dt)) << kernel_name(k) << " " << dtype_name(dt) << " on ref";
    for (DType dt : support_dtypes())
      if (ref_backend().supports(k, dt)) {
        EXPECT_TRUE(cpu_backend().supports(k, dt)) << "cpu lacks " << kernel_name(k) << " " << dtype_name(dt);
        ++covered;
      }
  }
  EXPECT_GE(covered, 2 * static_cast<int>(all_kernels().size()));
  EXPECT_FALSE(cuda_backend().available() ? false : cuda_backend().supports(Kernel::matmul, DType::f32))
      << "an unavailable cuda backend supports nothing";
}

// The cuda rows are instantiated only when a device is usable; this says so when they are not.
TEST(BackendOpsCuda, Present) {
  if (!cuda_backend().available()) GTEST_SKIP() << "cuda backend: skipped (no device / built without CUDA)";
  SUCCEED() << "cuda rows of Ops/BackendOps and Kernels/BackendKernels ran";
}

// ---- determinism: cpu results of reduction-heavy ops are bitwise the same for 1 and 2 threads ----

// f64 data: double accumulation of f32 values is often exact, which would hide an order dependence.
std::vector<std::vector<char>> reduction_heavy_results(DType dt) {
  RngStream rng(11, "determinism");
  Tensor x = rand_normal(Shape{3, 200003}, 0, 1, rng, dt);
  Tensor col = rand_normal(Shape{4001, 37}, 0, 1, rng, dt);
  Tensor rows = rand_normal(Shape{700, 301}, 0, 1, rng, dt).requires_grad_();
  Tensor gamma = rand_normal(Shape{301}, 1, 0.1, rng, dt).requires_grad_(),
         beta = rand_normal(Shape{301}, 0, 0.1, rng, dt);
  beta.requires_grad_();
  Tensor logits = rand_normal(Shape{5000, 33}, 0, 2, rng, dt).requires_grad_();
  Tensor target = rand_uniform(Shape{5000}, 0, 33, rng).to(DType::i64);
  std::vector<Tensor> outs = {sum(x, {1}), sum(x), sum(col, {0}), softmax(rows, -1), log_softmax(rows, 0)};
  Tensor ln = layernorm(rows, gamma, beta);
  Tensor ce = cross_entropy(logits, target, 0.1);
  outs.push_back(ln);
  outs.push_back(ce);
  add(sum(mul(ln, ln)), ce).backward();
  for (Tensor g : {rows.grad(), gamma.grad(), beta.grad(), logits.grad()}) outs.push_back(g);
  std::vector<std::vector<char>> bytes;
  for (const Tensor& t : outs) {
    Tensor c = t.detach().contiguous();
    const char* p = static_cast<const char*>(c.raw_data());
    bytes.emplace_back(p, p + c.nbytes());
  }
  return bytes;
}

class Determinism : public ::testing::TestWithParam<DType> {};

TEST_P(Determinism, CpuBitwiseSameForOneAndTwoThreads) {
  int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one_thread = reduction_heavy_results(GetParam());
  omp_set_num_threads(2);
  auto two_threads = reduction_heavy_results(GetParam());
  omp_set_num_threads(prev);
  ASSERT_EQ(one_thread.size(), two_threads.size());
  const char* names[] = {"sum dim 1",         "sum all",   "sum dim 0",         "softmax",
                         "log_softmax dim 0", "layernorm", "cross_entropy",     "layernorm grad x",
                         "grad gamma",        "grad beta", "cross_entropy grad"};
  for (size_t i = 0; i < one_thread.size(); ++i)
    EXPECT_TRUE(one_thread[i] == two_threads[i]) << names[i] << " differs between 1 and 2 threads";
}

INSTANTIATE_TEST_SUITE_P(Cpu, Determinism, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace moelab
