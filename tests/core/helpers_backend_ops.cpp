#include "core/helpers_backend_ops.h"

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::test {

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous:
      return "contiguous";
    case Layout::transposed:
      return "transposed";
    case Layout::sliced:
      return "sliced";
  }
  return "?";
}

std::vector<double> InputGen::draw(int64_t n, double lo, double hi) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) {
    x = lo + (hi - lo) * rng_.uniform();
    if (!is_floating(dtype_)) x = std::round(x);
  }
  return v;
}

Tensor InputGen::laid_out(const Tensor& values) {
  const Shape& s = values.shape();
  Layout l = layout_;
  if (l == Layout::transposed && s.size() < 2) l = Layout::sliced;
  if (l == Layout::sliced && s.size() < 1) l = Layout::contiguous;
  NoGradGuard ng;
  if (l == Layout::contiguous) return values;
  if (l == Layout::transposed) {
    Shape ts = s;
    std::swap(ts[ts.size() - 1], ts[ts.size() - 2]);
    Tensor buf = Tensor::full(ts, 99, values.dtype());
    Tensor view = buf.transpose(-1, -2);
    view.copy_(values);
    return view.detach();
  }
  Shape bs = s;
  int64_t n = s.back();
  bs[bs.size() - 1] = 2 * n + 1;
  Tensor buf = Tensor::full(bs, 99, values.dtype());
  Tensor view = buf.slice(-1, 1, 1 + 2 * n, 2);
  view.copy_(values);
  return view.detach();
}

Tensor InputGen::real(const Shape& s, double lo, double hi) {
  return laid_out(Tensor::from_vector(draw(numel_of(s), lo, hi), s).to(dtype_));
}

Tensor InputGen::away_from(const Shape& s, std::vector<double> kinks, double gap) {
  std::vector<double> v = draw(numel_of(s), -2, 2);
  for (double& x : v)
    for (double k : kinks)
      if (std::abs(x - k) < gap) x = x < k ? k - gap : k + gap;
  return laid_out(Tensor::from_vector(v, s).to(dtype_));
}

Tensor InputGen::grid(const Shape& s) {
  std::vector<double> v = draw(numel_of(s), -2, 2);
  for (double& x : v) x = std::round(x * 2) / 2;
  return laid_out(Tensor::from_vector(v, s).to(dtype_));
}

Tensor InputGen::index(const Shape& s, int64_t limit, DType t) {
  std::vector<int64_t> v(static_cast<size_t>(numel_of(s)));
  for (int64_t& x : v) x = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(limit)));
  return Tensor::from_vector(v, s).to(t);
}

OpRun run_on_backend(const OpFn& fn, const std::vector<Tensor>& inputs, BackendKind backend,
                     const std::vector<Tensor>* upstream) {
  bool on_device = backend == BackendKind::cuda;
  std::optional<BackendScope> scope;
  if (!on_device) scope.emplace(backend);
  Device dev = on_device ? Device::cuda() : Device::cpu();
  std::vector<Tensor> leaves;
  for (const Tensor& x : inputs) {
    Tensor l = x.defined() ? (on_device ? x.to(dev) : x.detach()) : x;
    if (upstream && l.defined() && is_floating(l.dtype())) l.requires_grad_(true);
    leaves.push_back(l);
  }
  OpRun r;
  std::vector<Tensor> outs = fn(leaves);
  if (upstream) {
    Tensor total;
    for (size_t i = 0; i < outs.size() && i < upstream->size(); ++i) {
      const Tensor& up = (*upstream)[i];
      if (!up.defined() || !outs[i].requires_grad()) continue;
      Tensor term = sum(mul(outs[i], up.to(dev)));
      total = total.defined() ? add(total, term) : term;
    }
    if (total.defined()) total.backward();
    for (const Tensor& l : leaves) {
      Tensor g = l.defined() && l.requires_grad() ? l.grad() : Tensor();
      r.grads.push_back(g.defined() ? g.to(Device::cpu()) : g);
    }
  }
  for (const Tensor& o : outs) r.outputs.push_back(o.defined() ? o.detach().to(Device::cpu()) : o);
  return r;
}

void plant_nonfinite(Tensor& x) {
  int64_t n = x.numel();
  if (n == 0) return;
  std::vector<double> v = x.to_vector<double>();
  v[0] = std::numeric_limits<double>::quiet_NaN();
  v[static_cast<size_t>(n / 3)] = std::numeric_limits<double>::infinity();
  v[static_cast<size_t>(2 * n / 3)] = -std::numeric_limits<double>::infinity();
  NoGradGuard ng;
  x.copy_(Tensor::from_vector(v, x.shape()).to(x.dtype()));
}

// ---- guarded kernel arguments ----

Tensor GuardedGen::place(const Tensor& host_values, bool guarded) {
  int64_t n = host_values.numel();
  Tensor buffer = Tensor::full(Shape{n + 2 * kGuard}, kSentinel, host_values.dtype(), device_);
  Tensor view = Tensor::view_of(buffer, host_values.shape(), contiguous_strides(host_values.shape()), kGuard);
  if (n > 0) view.copy_(host_values);
  if (guarded)
    outputs_.push_back({buffer, n, is_floating(host_values.dtype()) ? kSentinel : std::trunc(kSentinel)});
  return view;
}

Tensor GuardedGen::in(const Shape& s, double lo, double hi) {
  std::vector<double> v(static_cast<size_t>(numel_of(s)));
  for (double& x : v) x = lo + (hi - lo) * rng_.uniform();
  return place(Tensor::from_vector(v, s).to(dtype_), false);
}

Tensor GuardedGen::in_values(const Tensor& host_values) { return place(host_values.contiguous(), false); }

Tensor GuardedGen::in_index(const Shape& s, int64_t limit, DType t) {
  std::vector<int64_t> v(static_cast<size_t>(numel_of(s)));
  for (int64_t& x : v) x = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(limit)));
  return place(Tensor::from_vector(v, s).to(t), false);
}

Tensor GuardedGen::out(const Shape& s, DType t) { return place(Tensor::full(s, kSentinel, t), true); }

Tensor GuardedGen::out_zeros(const Shape& s, DType t) { return place(Tensor::zeros(s, t), true); }

std::string GuardedGen::check_guards() const {
  for (size_t k = 0; k < outputs_.size(); ++k) {
    std::vector<double> v = outputs_[k].buffer.to_vector<double>();
    int64_t n = outputs_[k].numel;
    for (int64_t i = 0; i < kGuard; ++i) {
      for (int64_t at : {i, kGuard + n + i}) {
        if (v[static_cast<size_t>(at)] != outputs_[k].sentinel) {
          std::ostringstream os;
          os << "output " << k << " (" << n << " elements): guard element "
             << (at < kGuard ? kGuard - at : at - kGuard - n + 1)
             << (at < kGuard ? " before the start" : " past the end") << " was overwritten with "
             << v[static_cast<size_t>(at)];
          return os.str();
        }
      }
    }
  }
  return "";
}

}  // namespace moelab::test
