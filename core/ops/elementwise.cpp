// Element-wise ops: unary maths, broadcasting binary ops, scalar forms, and their backward.
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace moelab {

using detail::backend_of;
using detail::empty_like;

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"copy", "neg", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "relu",
                                "gelu_tanh", "gelu_erf", "silu", "abs", "square", "softplus", "add_scalar",
                                "mul_scalar", "pow_scalar", "rsub_scalar", "rdiv_scalar", "huber",
                                "leaky_relu", "clamp_min"};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "gt"};
  return names[static_cast<int>(op)];
}

Tensor unary(UnaryOp op, const Tensor& x_in, double alpha) {
  Backend& be = backend_of({&x_in}, unary_op_name(op));
  Tensor x = detail::contiguous_input(x_in);
  Tensor out = empty_like(x);
  if (x.numel() > 0) be.unary(op, x, out, alpha);
  if (needs_grad({&x_in})) {
    MOELAB_CHECK(is_floating(x.dtype()), unary_op_name(op) << ": gradient of an integer tensor");
    record(out, unary_op_name(op), {x_in}, [op, alpha, x = x.detach(), y = out.detach()](const Tensor& g) {
      Tensor gx = empty_like(x), gc = g.contiguous();
      if (x.numel() > 0) backend_for(x.device()).unary_backward(op, x, y, gc, gx, alpha);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor gelu(const Tensor& x, GeluForm form) {
  return unary(form == GeluForm::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, x);
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor softplus(const Tensor& x) { return unary(UnaryOp::softplus, x); }
Tensor pow(const Tensor& x, double e) { return unary(UnaryOp::pow_scalar, x, e); }
Tensor clamp_min(const Tensor& x, double lo) { return unary(UnaryOp::clamp_min, x, lo); }
Tensor add(const Tensor& a, double s) { return unary(UnaryOp::add_scalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary(UnaryOp::mul_scalar, a, s); }
Tensor sub(double s, const Tensor& a) { return unary(UnaryOp::rsub_scalar, a, s); }
Tensor div(double s, const Tensor& a) { return unary(UnaryOp::rdiv_scalar, a, s); }

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  std::vector<int> dims;
  int lead = g.dim() - shape.size();
  for (int i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  Tensor s = sum(g, dims, /*keepdim=*/true);
  return s.reshape(shape);
}

namespace {
Tensor broadcast_view(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  NoGradGuard ng;  // a kernel input only; the op records its own backward
  return expand(x, shape);
}
}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  Backend& be = backend_of({&a, &b}, name);
  detail::check_same_dtype(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() > 0) be.binary(op, broadcast_view(a, shape), broadcast_view(b, shape), out);
  if (needs_grad({&a, &b}) && op != BinaryOp::eq && op != BinaryOp::gt) {
    record(out, name, {a, b}, [op, a = a.detach(), b = b.detach(), y = out.detach()](const Tensor& g) {
      Tensor ga, gb;
      switch (op) {
        case BinaryOp::add: ga = g; gb = g; break;
        case BinaryOp::sub: ga = g; gb = neg(g); break;
        case BinaryOp::mul: ga = mul(g, b); gb = mul(g, a); break;
        case BinaryOp::div: ga = div(g, b); gb = neg(div(mul(g, y), b)); break;
        case BinaryOp::maximum:
        case BinaryOp::minimum:
          ga = mul(g, binary(BinaryOp::eq, y, a));  // the selected input gets the gradient (`a` on ties)
          gb = sub(g, ga);
          break;
        case BinaryOp::eq:
        case BinaryOp::gt:
          MOELAB_FAIL(binary_op_name(op) << " is not differentiable");
        case BinaryOp::count_: break;
      }
      return std::vector<Tensor>{sum_to_shape(ga, a.shape()), sum_to_shape(gb, b.shape())};
    });
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return sub(s, a); }

}  // namespace moelab
