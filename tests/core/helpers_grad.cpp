#include "core/helpers_grad.h"

#include <cmath>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab::test {

namespace {
// The inputs as f sees them: copies on `device` (the host inputs themselves on the cpu).
std::vector<Tensor> on_device(const std::vector<Tensor>& inputs, Device device) {
  if (device.is_cpu()) return inputs;
  std::vector<Tensor> out;
  for (const Tensor& x : inputs) out.push_back(x.defined() ? x.to(device) : x);
  return out;
}

// L = sum(y * w), accumulated on the host in double.
double project(const Tensor& y, const std::vector<double>& w) {
  std::vector<double> v = y.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
  return s;
}
}  // namespace

std::string check_gradients(const TensorFn& f, std::vector<Tensor> inputs, double tol) {
  GradCheckOptions o;
  o.tol = tol;
  return check_gradients(f, std::move(inputs), o);
}

std::string check_gradients(const TensorFn& f, std::vector<Tensor> inputs, const GradCheckOptions& opt) {
  std::ostringstream msg;
  std::vector<bool> wrt(inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !is_floating(inputs[i].dtype())) continue;
    inputs[i] = inputs[i].detach().to(DType::f64).contiguous().clone();
    wrt[i] = opt.wrt.empty() || (i < opt.wrt.size() && opt.wrt[i]);
  }
  // Analytic gradients (leaves on the device; on the cpu they are the inputs themselves).
  std::vector<Tensor> leaves = on_device(inputs, opt.device);
  for (size_t i = 0; i < leaves.size(); ++i)
    if (wrt[i]) leaves[i].requires_grad_(true);
  Tensor y = f(leaves);
  if (!y.defined()) return "check_gradients: f returned an undefined tensor";
  if (!y.requires_grad()) return "check_gradients: the output of f does not require grad (nothing recorded)";
  std::vector<double> w(static_cast<size_t>(y.numel()));
  RngStream rng(opt.seed, "gradcheck");
  for (double& x : w) x = rng.normal();
  y.backward(Tensor::from_vector(w, y.shape()).to(y.dtype()).to(y.device()));
  std::vector<std::vector<double>> analytic(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!wrt[i]) continue;
    Tensor g = leaves[i].grad();
    analytic[i] = g.defined() ? g.to_vector<double>() : std::vector<double>(inputs[i].numel(), 0.0);
    leaves[i].zero_grad();
    leaves[i].requires_grad_(false);
  }
  // Numeric gradients, one element at a time.
  NoGradGuard no_grad;
  int failures = 0;
  double worst = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!wrt[i]) continue;
    double* p = inputs[i].data<double>();
    for (int64_t e = 0; e < inputs[i].numel(); ++e) {
      double keep = p[e];
      p[e] = keep + opt.eps;
      double up = project(f(on_device(inputs, opt.device)), w);
      p[e] = keep - opt.eps;
      double down = project(f(on_device(inputs, opt.device)), w);
      p[e] = keep;
      double numeric = (up - down) / (2 * opt.eps), a = analytic[i][static_cast<size_t>(e)];
      double err = std::abs(a - numeric) / std::max(1.0, std::abs(numeric));
      if (!(err <= opt.tol)) {  // also catches NaN
        if (failures < 8)
          msg << "input " << i << " " << inputs[i].shape().str() << " element " << e << ": analytic " << a
              << ", numeric " << numeric << "\n";
        ++failures;
      }
      if (err > worst || err != err) worst = err;
    }
  }
  if (failures == 0) return "";
  std::ostringstream out;
  out << failures << " gradient element(s) differ by more than " << opt.tol
      << " (relative to max(1, |numeric|));"
      << " largest error " << worst << "\n"
      << msg.str();
  return out.str();
}

}  // namespace moelab::test
