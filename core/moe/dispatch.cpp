// The fused dispatch -> grouped expert FFN -> combine op and its mirrored backward (docs/moe.md §3).
#include "core/moe/dispatch.h"

#include <atomic>
#include <chrono>

#include "core/autograd/autograd.h"

namespace moelab::moe {

namespace {

Tensor from_i64(const std::vector<int64_t>& v, Device device) {
  return Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}, device);
}

void check_experts(const ExpertWeights& w, int64_t d, DType dtype, const char* op) {
  MOELAB_CHECK(w.w1.defined() && w.w1.dim() == 3 && w.w1.size(1) == d,
               op << ": experts.w1 must be (E, " << d << ", f), got " << (w.w1.defined() ? w.w1.shape().str() : "undefined"));
  int64_t E = w.w1.size(0), f = w.w1.size(2);
  MOELAB_CHECK(w.w2.defined() && w.w2.shape() == Shape({E, f, d}),
               op << ": experts.w2 must be " << Shape({E, f, d}).str() << ", got "
                  << (w.w2.defined() ? w.w2.shape().str() : "undefined"));
  MOELAB_CHECK(!w.b1.defined() || w.b1.shape() == Shape({E, f}), op << ": experts.b1 must be (E, f)");
  MOELAB_CHECK(!w.b2.defined() || w.b2.shape() == Shape({E, d}), op << ": experts.b2 must be (E, d)");
  bool swiglu = w.act == ExpertActivation::swiglu;
  MOELAB_CHECK(swiglu == w.w3.defined(), op << ": experts.w3 is " << (swiglu ? "required" : "only used")
                                            << " for the swiglu activation");
  MOELAB_CHECK(!swiglu || w.w3.shape() == w.w1.shape(), op << ": experts.w3 must have w1's shape");
  for (const Tensor* t : {&w.w1, &w.b1, &w.w2, &w.b2, &w.w3})
    MOELAB_CHECK(!t->defined() || t->dtype() == dtype, op << ": expert weights must be " << dtype_name(dtype));
}

// Detached contiguous copies of the expert weights (the closures must not hold graph references).
ExpertWeights detached(const ExpertWeights& w) {
  ExpertWeights o;
  o.act = w.act;
  auto det = [](const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); };
  o.w1 = det(w.w1), o.b1 = det(w.b1), o.w2 = det(w.w2), o.b2 = det(w.b2), o.w3 = det(w.w3);
  return o;
}

ExpertWeights empty_grads(const ExpertWeights& w) {
  ExpertWeights g;
  g.act = w.act;
  auto mk = [](const Tensor& t) { return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor(); };
  g.w1 = mk(w.w1), g.b1 = mk(w.b1), g.w2 = mk(w.w2), g.b2 = mk(w.b2), g.w3 = mk(w.w3);
  return g;
}

// Atomics: with train.workers, forwards run on several threads at once.
std::atomic<bool> g_expert_timing{false};
std::atomic<double> g_expert_seconds{0.0};

// Adds the wall time of its scope to g_expert_seconds when timing is on.
class ExpertTimerScope {
 public:
  ExpertTimerScope() : start_(g_expert_timing ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point()) {}
  ~ExpertTimerScope() {
    if (g_expert_timing)
      g_expert_seconds.fetch_add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Saved activations of one grouped FFN forward.
struct FfnSaved {
  Tensor h, g, a;
};

Tensor run_ffn(Backend& be, const Tensor& x_rows, const Tensor& offsets, const ExpertWeights& w, FfnSaved& saved) {
  int64_t R = x_rows.size(0), d = w.w1.size(1), f = w.w1.size(2);
  Device dev = x_rows.device();
  saved.h = Tensor::empty(Shape{R, f}, x_rows.dtype(), dev);
  saved.a = Tensor::empty(Shape{R, f}, x_rows.dtype(), dev);
  if (w.act == ExpertActivation::swiglu) saved.g = Tensor::empty(Shape{R, f}, x_rows.dtype(), dev);
  Tensor y = Tensor::empty(Shape{R, d}, x_rows.dtype(), dev);
  ExpertTimerScope timer;
  if (R > 0) be.moe_expert_ffn(x_rows, offsets, w, saved.h, saved.g, saved.a, y);
  return y;
}

Tensor run_ffn_backward(Backend& be, const Tensor& x_rows, const Tensor& offsets, const ExpertWeights& w,
                        const FfnSaved& saved, const Tensor& gy, ExpertWeights& grads) {
  int64_t R = x_rows.size(0), d = w.w1.size(1);
  Tensor gx = Tensor::empty(Shape{R, d}, x_rows.dtype(), x_rows.device());
  ExpertTimerScope timer;
  if (R > 0) {
    be.moe_expert_ffn_backward(x_rows, offsets, w, saved.h, saved.g, saved.a, gy, gx, grads);
  } else {
    for (Tensor* t : {&grads.w1, &grads.b1, &grads.w2, &grads.b2, &grads.w3})
      if (t->defined()) t->fill_(0.0);
  }
  return gx;
}

}  // namespace

void set_expert_timing(bool on) { g_expert_timing = on; }
double expert_time_seconds() { return g_expert_seconds; }
void reset_expert_time() { g_expert_seconds = 0; }

std::vector<int64_t> DispatchPlan::kept_counts() const {
  std::vector<int64_t> off = expert_offsets.to_vector<int64_t>(), out(static_cast<size_t>(num_experts));
  for (int64_t e = 0; e < num_experts; ++e) out[e] = off[e + 1] - off[e];
  return out;
}

std::vector<int64_t> uniform_token_offsets(int64_t tokens, int64_t k) {
  std::vector<int64_t> o(static_cast<size_t>(tokens + 1));
  for (int64_t t = 0; t <= tokens; ++t) o[t] = t * k;
  return o;
}

std::shared_ptr<DispatchPlan> make_dispatch_plan(const std::vector<int64_t>& slot_expert,
                                                 const std::vector<int64_t>& token_offsets, int64_t num_experts,
                                                 int64_t capacity, const Tensor& slot_priority, Device device) {
  auto p = std::make_shared<DispatchPlan>();
  p->num_tokens = static_cast<int64_t>(token_offsets.size()) - 1;
  p->num_slots = static_cast<int64_t>(slot_expert.size());
  p->num_experts = num_experts;
  MOELAB_CHECK(p->num_tokens >= 0 && token_offsets.front() == 0 && token_offsets.back() == p->num_slots,
               "make_dispatch_plan: token_offsets must run from 0 to the number of slots (" << p->num_slots << ")");
  MOELAB_CHECK(!slot_priority.defined() || slot_priority.numel() == p->num_slots,
               "make_dispatch_plan: slot_priority needs one value per slot");
  int64_t S = p->num_slots;
  p->token_offsets = from_i64(token_offsets, device);
  p->slot_expert = from_i64(slot_expert, device);
  p->expert_counts = Tensor::empty(Shape{num_experts}, DType::i64, device);
  p->expert_offsets = Tensor::empty(Shape{num_experts + 1}, DType::i64, device);
  p->row_slot = Tensor::empty(Shape{S}, DType::i64, device);
  p->slot_row = Tensor::empty(Shape{S}, DType::i64, device);
  Tensor prio = slot_priority.defined() ? slot_priority.detach().contiguous().to(device) : Tensor();
  backend_for(device).moe_plan(p->slot_expert, prio, num_experts, capacity, p->expert_counts, p->expert_offsets,
                               p->row_slot, p->slot_row);
  p->num_rows = device.is_cpu() ? p->expert_offsets.data<int64_t>()[num_experts]
                                : p->expert_offsets.to_vector<int64_t>()[static_cast<size_t>(num_experts)];
  int64_t assigned = 0;
  for (int64_t e : slot_expert) assigned += e >= 0 ? 1 : 0;
  p->dropped = assigned - p->num_rows;
  return p;
}

Tensor moe_dispatch_combine(const Tensor& x_in, const Tensor& slot_weight_in, const std::shared_ptr<DispatchPlan>& plan,
                            const ExpertWeights& experts) {
  MOELAB_CHECK(x_in.dim() == 2 && is_floating(x_in.dtype()), "moe_dispatch_combine: x must be a float (T, d) tensor, got "
                                                                 << x_in.shape().str());
  MOELAB_CHECK(plan && plan->token_offsets.device() == x_in.device(),
               "moe_dispatch_combine: the plan and x must be on the same device");
  int64_t T = x_in.size(0), d = x_in.size(1);
  MOELAB_CHECK(plan && plan->num_tokens == T, "moe_dispatch_combine: plan is for " << (plan ? plan->num_tokens : -1)
                                                                                 << " tokens, x has " << T);
  MOELAB_CHECK(slot_weight_in.numel() == plan->num_slots && slot_weight_in.dtype() == x_in.dtype(),
               "moe_dispatch_combine: slot_weight must hold " << plan->num_slots << " " << dtype_name(x_in.dtype())
                                                              << " values");
  check_experts(experts, d, x_in.dtype(), "moe_dispatch_combine");
  Device dev = x_in.device();
  Backend& be = backend_for(dev);
  Tensor x = x_in.detach().contiguous();
  Tensor w = slot_weight_in.detach().contiguous().reshape(Shape{plan->num_slots});
  ExpertWeights ew = detached(experts);
  int64_t R = plan->num_rows;
  Tensor x_rows = Tensor::empty(Shape{R, d}, x.dtype(), dev);
  if (R > 0) be.moe_gather_rows(x, plan->slot_row, plan->token_offsets, x_rows);
  auto saved = std::make_shared<FfnSaved>();
  Tensor y_rows = run_ffn(be, x_rows, plan->expert_offsets, ew, *saved);
  Tensor out = Tensor::empty(Shape{T, d}, x.dtype(), dev);
  if (T > 0) be.moe_combine(y_rows, w, plan->slot_row, plan->token_offsets, out);
  record(out, "moe_dispatch_combine",
         {x_in, slot_weight_in, experts.w1, experts.b1, experts.w2, experts.b2, experts.w3},
         [plan, x_rows, y_rows, w, ew, saved, T, d, dev, wshape = slot_weight_in.shape()](const Tensor& gout_in) {
           Backend& be = backend_for(dev);
           Tensor gout = gout_in.contiguous();
           int64_t R = plan->num_rows;
           Tensor gy = Tensor::empty(Shape{R, d}, gout.dtype(), dev);
           Tensor gw = Tensor::empty(Shape{plan->num_slots}, gout.dtype(), dev);
           if (T > 0) be.moe_combine_backward(y_rows, w, plan->slot_row, plan->token_offsets, gout, gy, gw);
           ExpertWeights grads = empty_grads(ew);
           Tensor gx_rows = run_ffn_backward(be, x_rows, plan->expert_offsets, ew, *saved, gy, grads);
           Tensor gx = Tensor::empty(Shape{T, d}, gout.dtype(), dev);
           if (T > 0) be.moe_scatter_rows(gx_rows, plan->slot_row, plan->token_offsets, gx);
           return std::vector<Tensor>{gx, gw.reshape(wshape), grads.w1, grads.b1, grads.w2, grads.b2, grads.w3};
         });
  return out;
}

Tensor grouped_expert_ffn(const Tensor& x_rows_in, const std::vector<int64_t>& expert_offsets,
                          const ExpertWeights& experts) {
  MOELAB_CHECK(x_rows_in.dim() == 2 && is_floating(x_rows_in.dtype()),
               "grouped_expert_ffn: x_rows must be a float (R, d) tensor, got " << x_rows_in.shape().str());
  int64_t R = x_rows_in.size(0), d = x_rows_in.size(1);
  check_experts(experts, d, x_rows_in.dtype(), "grouped_expert_ffn");
  int64_t E = experts.w1.size(0);
  MOELAB_CHECK(static_cast<int64_t>(expert_offsets.size()) == E + 1 && expert_offsets.front() == 0 &&
                   expert_offsets.back() == R,
               "grouped_expert_ffn: expert_offsets must have E + 1 = " << E + 1 << " entries from 0 to R = " << R);
  Backend& be = backend_for(x_rows_in.device());
  Tensor x_rows = x_rows_in.detach().contiguous();
  Tensor offsets = from_i64(expert_offsets, Device::cpu());  // read on the host by every backend
  ExpertWeights ew = detached(experts);
  auto saved = std::make_shared<FfnSaved>();
  Tensor y = run_ffn(be, x_rows, offsets, ew, *saved);
  record(y, "grouped_expert_ffn", {x_rows_in, experts.w1, experts.b1, experts.w2, experts.b2, experts.w3},
         [x_rows, offsets, ew, saved](const Tensor& gy_in) {
           Backend& be = backend_for(x_rows.device());
           ExpertWeights grads = empty_grads(ew);
           Tensor gx = run_ffn_backward(be, x_rows, offsets, ew, *saved, gy_in.contiguous(), grads);
           return std::vector<Tensor>{gx, grads.w1, grads.b1, grads.w2, grads.b2, grads.w3};
         });
  return y;
}

}  // namespace moelab::moe
