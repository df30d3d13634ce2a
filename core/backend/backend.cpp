#include "core/backend/backend.h"

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/ref/ref_backend.h"

namespace moelab {

const char* backend_name(BackendKind k) {
  switch (k) {
    case BackendKind::ref: return "ref";
    case BackendKind::cpu: return "cpu";
    case BackendKind::cuda: return "cuda";
  }
  return "?";
}

void Backend::not_supported(const char* kernel) const {
  throw NotSupported(std::string("kernel '") + kernel + "' is not implemented on the " + name() + " backend");
}

// Default bodies: a backend that lacks a kernel says so by name.
void* Backend::device_allocate(size_t, Device) { not_supported("device_allocate"); }
void Backend::device_free(void*, Device) { not_supported("device_free"); }
void Backend::copy_across(const Tensor&, Tensor&) { not_supported("copy_across"); }
void Backend::fill(Tensor&, double) { not_supported("fill"); }
void Backend::copy(const Tensor&, Tensor&) { not_supported("copy"); }
void Backend::unary(UnaryOp, const Tensor&, Tensor&, double) { not_supported("unary"); }
void Backend::unary_backward(UnaryOp, const Tensor&, const Tensor&, const Tensor&, Tensor&, double) {
  not_supported("unary_backward");
}
void Backend::binary(BinaryOp, const Tensor&, const Tensor&, Tensor&) { not_supported("binary"); }
void Backend::reduce(ReduceOp, const Tensor&, int64_t, int64_t, int64_t, Tensor&, Tensor*) {
  not_supported("reduce");
}
void Backend::matmul(const Tensor&, const Tensor&, Tensor&, bool, bool, double, double) {
  not_supported("matmul");
}
void Backend::softmax(const Tensor&, Tensor&, bool, int64_t) { not_supported("softmax"); }
void Backend::softmax_backward(const Tensor&, const Tensor&, Tensor&, bool) { not_supported("softmax_backward"); }
void Backend::logsumexp(const Tensor&, Tensor&) { not_supported("logsumexp"); }
void Backend::attention_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double, Tensor&,
                                Tensor&) {
  not_supported("attention_forward");
}
void Backend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double,
                                 const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&) {
  not_supported("attention_backward");
}
void Backend::layernorm(const Tensor&, const Tensor&, const Tensor&, double, Tensor&, Tensor&, Tensor&) {
  not_supported("layernorm");
}
void Backend::layernorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 Tensor&, Tensor&, Tensor&) {
  not_supported("layernorm_backward");
}
void Backend::gather(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t, Tensor&) {
  not_supported("gather");
}
void Backend::scatter_add(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t, Tensor&) {
  not_supported("scatter_add");
}
void Backend::index_select_rows(const Tensor&, const Tensor&, Tensor&) { not_supported("index_select_rows"); }
void Backend::index_add_rows(const Tensor&, const Tensor&, Tensor&) { not_supported("index_add_rows"); }
void Backend::topk(const Tensor&, int64_t, Tensor&, Tensor&) { not_supported("topk"); }
void Backend::im2col(const Tensor&, int64_t, int64_t, int64_t, int64_t, Tensor&) { not_supported("im2col"); }
void Backend::col2im(const Tensor&, int64_t, int64_t, int64_t, int64_t, Tensor&) { not_supported("col2im"); }
void Backend::cross_entropy(const Tensor&, const Tensor&, double, int64_t, Tensor&) {
  not_supported("cross_entropy");
}
void Backend::cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, double, int64_t, Tensor&) {
  not_supported("cross_entropy_backward");
}
void Backend::random_uniform(Tensor&, uint64_t, uint64_t, double, double) { not_supported("random_uniform"); }
void Backend::random_normal(Tensor&, uint64_t, uint64_t, double, double) { not_supported("random_normal"); }
void Backend::dropout_mask(Tensor&, uint64_t, uint64_t, double) { not_supported("dropout_mask"); }
void Backend::adamw_update(Tensor&, const Tensor&, Tensor&, Tensor&, const AdamWParams&) {
  not_supported("adamw_update");
}
void Backend::sgd_update(Tensor&, const Tensor&, Tensor&, double, double, double, bool, bool) {
  not_supported("sgd_update");
}
void Backend::rmsprop_update(Tensor&, const Tensor&, Tensor&, Tensor&, double, double, double, double, bool) {
  not_supported("rmsprop_update");
}
double Backend::sum_squares(const Tensor&) { not_supported("sum_squares"); }
void Backend::moe_plan(const Tensor&, const Tensor&, int64_t, int64_t, Tensor&, Tensor&, Tensor&, Tensor&) {
  not_supported("moe_plan");
}
void Backend::moe_gather_rows(const Tensor&, const Tensor&, const Tensor&, Tensor&) {
  not_supported("moe_gather_rows");
}
void Backend::moe_scatter_rows(const Tensor&, const Tensor&, const Tensor&, Tensor&) {
  not_supported("moe_scatter_rows");
}
void Backend::moe_combine(const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&) {
  not_supported("moe_combine");
}
void Backend::moe_combine_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   Tensor&, Tensor&) {
  not_supported("moe_combine_backward");
}
void Backend::moe_expert_ffn(const Tensor&, const Tensor&, const ExpertWeights&, Tensor&, Tensor&, Tensor&,
                             Tensor&) {
  not_supported("moe_expert_ffn");
}
void Backend::moe_expert_ffn_backward(const Tensor&, const Tensor&, const ExpertWeights&, const Tensor&,
                                      const Tensor&, const Tensor&, const Tensor&, Tensor&, ExpertWeights&) {
  not_supported("moe_expert_ffn_backward");
}

Backend& ref_backend() {
  static RefBackend b;
  return b;
}
Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

namespace {
thread_local BackendKind g_host_kind = BackendKind::cpu;
}

Backend& host_backend() { return g_host_kind == BackendKind::ref ? ref_backend() : cpu_backend(); }
Backend& backend_for(Device d) { return d.is_cpu() ? host_backend() : cuda_backend(); }

BackendScope::BackendScope(BackendKind kind) : prev_(g_host_kind) {
  MOELAB_CHECK(kind != BackendKind::cuda, "BackendScope selects the host backend (ref or cpu), not cuda");
  g_host_kind = kind;
}
BackendScope::~BackendScope() { g_host_kind = prev_; }

}  // namespace moelab
