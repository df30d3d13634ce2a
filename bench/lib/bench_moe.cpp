// `moelab bench moe`: one MoE layer's forward and forward+backward against a dense FFN doing the same
// active FLOPs (hidden width k * d_ff on the same tokens), measured in the same run, interleaved; each
// figure is the median of the repeats after a warm-up. The time the layer spends inside its grouped expert
// FFN kernels is timed within the same runs, so dispatch_share = 1 - expert time / layer time is the share
// spent routing, dispatching, combining and on balancing terms; raw cblas_sgemm on the dense FFN's first
// GEMM shape gives the machine's GEMM rate.
// Prints one JSON line per case.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/lib/bench.h"
#include "bench/lib/bench_machine.h"
#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/backend/device_select.h"
#include "core/moe/moe_layer.h"
#include "core/nn/mlp.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab::bench {
namespace {


struct Case {
  int64_t tokens = 4096, d_model = 512, d_ff = 1024, experts = 8, top_k = 2;
};

struct Options {
  std::vector<Case> cases;
  std::string router = "top_k";
  double capacity_factor = 0;  // > 0: capacity mode with this factor
  std::vector<std::pair<std::string, std::string>> moe_keys;  // --moe key=value
  int repeats = 7, warmup = 2;
  Device device = Device::cpu();
  DType dtype = DType::f32;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--tokens T --d-model D --d-ff F --experts E --top-k K] [--router R] [--capacity-factor C]\n"
      "          [--moe key=value ...] [--repeats N] [--warmup W]\n"
      "  Without shape flags runs three cases: (T=4096, d=512, d_ff=1024, E=8, k=2), (1024, 128, 256, 16, 1),\n"
      "  (4096, 256, 512, 64, 2). GELU experts by default (--moe activation=swiglu to change); --moe sets any\n"
      "  model.moe key (docs/moe.md). One JSON line per case: fwd_ms, fwd_bwd_ms (medians), active_gflops\n"
      "  (expert GEMM FLOPs of the kept rows, forward+backward = 3x forward, per second), dense_gflops (a dense\n"
      "  GELU FFN of width k*d_ff on the T tokens: the same active FLOPs), ratio = active / dense (forward+backward),\n"
      "  fwd_ratio, dispatch_share = 1 - time inside the expert FFN kernels / layer time (forward+backward, median\n"
      "  of the per-run shares), gemm_gflops\n"
      "  (cblas_sgemm, or dgemm for f64, on the dense FFN's (T, d) x (d, k*d_ff) shape; on cuda the matmul op,\n"
      "  cuBLAS) and active_vs_gemm; the device, CPU model and ISA (or GPU name), dtype and the case's peak memory\n"
      "  (peak RSS on the host, the allocator pool's high-water mark on cuda).\n",
      argv0);
}

bool parse(int argc, char** argv, Options& o) {
  Case c;
  bool shape = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    auto int_value = [&]() {
      shape = true;
      return std::stoll(value());
    };
    if (a == "--tokens") c.tokens = int_value();
    else if (a == "--d-model") c.d_model = int_value();
    else if (a == "--d-ff") c.d_ff = int_value();
    else if (a == "--experts") c.experts = int_value();
    else if (a == "--top-k") c.top_k = int_value();
    else if (a == "--router") o.router = value();
    else if (a == "--capacity-factor") o.capacity_factor = std::stod(value());
    else if (a == "--repeats") o.repeats = std::max(1, std::stoi(value()));
    else if (a == "--warmup") o.warmup = std::max(0, std::stoi(value()));
    else if (a == "--device") o.device = resolve_device(value());
    else if (a == "--dtype") o.dtype = parse_bench_dtype(value());
    else if (a == "--moe") {
      std::string kv = value();
      size_t eq = kv.find('=');
      if (eq == std::string::npos) throw std::runtime_error("--moe expects key=value, got '" + kv + "'");
      o.moe_keys.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      return false;
    } else {
      throw std::runtime_error("unknown option '" + a + "' (see --help)");
    }
  }
  if (shape) o.cases = {c};
  else o.cases = {{4096, 512, 1024, 8, 2}, {1024, 128, 256, 16, 1}, {4096, 256, 512, 64, 2}};
  return true;
}

void run_case(const Case& c, const Options& o) {
  moe::MoEConfig cfg;
  cfg.num_experts = c.experts;
  cfg.top_k = c.top_k;
  moe::set_moe_config_text(cfg, "router", o.router);
  if (o.capacity_factor > 0) {
    cfg.capacity_mode = moe::CapacityMode::capacity;
    cfg.capacity_factor = o.capacity_factor;
  } else if (cfg.router == "expert_choice") {
    cfg.capacity_factor = 1.0;
  }
  for (auto& [k, v] : o.moe_keys) moe::set_moe_config_text(cfg, k, v);
  const bool soft = cfg.router == "soft_moe";
  if (soft && cfg.option_int("slots_per_expert") == 0) cfg.capacity_factor = 1.0;
  cfg.check();

  RngStream rng(1, "bench_moe");
  moe::MoELayerOptions lo;
  lo.d_model = c.d_model;
  lo.d_ff = c.d_ff;
  lo.seq_len = c.tokens;
  lo.dtype = o.dtype;
  moe::MoELayer layer(cfg, lo, rng);
  nn::MlpOptions mo;
  mo.dim = c.d_model;
  mo.hidden = c.top_k * c.d_ff;
  mo.gated = cfg.activation == ExpertActivation::swiglu;
  mo.activation = mo.gated ? nn::Activation::silu : cfg.activation == ExpertActivation::relu ? nn::Activation::relu
                                                                                            : nn::Activation::gelu_tanh;
  mo.dtype = o.dtype;
  nn::MLP dense(mo, rng);
  const bool on_host = o.device == Device::cpu();
  layer.to(o.device);
  dense.to(o.device);
  Backend& backend = backend_for(o.device);
  auto time_once = [&](auto&& f) {  // device work is asynchronous: wait for it inside the timing
    backend.synchronize();
    double t0 = now_s();
    f();
    backend.synchronize();
    return now_s() - t0;
  };

  RngStream data(2, "bench_moe_data");
  Tensor x = rand_normal(Shape{c.tokens, c.d_model}, 0.0, 1.0, data, o.dtype).to(o.device);
  Tensor g = rand_normal(Shape{c.tokens, c.d_model}, 0.0, 1.0, data, o.dtype).to(o.device);

  auto moe_fwd = [&] {
    NoGradGuard ng;
    layer.forward(x);
  };
  // One backward from the output (gradient g, that of the loss sum(y * g)) and the balancing terms, so the
  // timing holds the layer's work and not that of a loss around it.
  auto moe_fwd_bwd = [&] {
    Tensor xi = x.detach().requires_grad_();
    nn::ForwardContext ctx;
    Tensor y = layer.forward(xi, ctx);
    Tensor aux = ctx.total_aux_loss();
    if (aux.defined()) run_backward({y, aux}, {g, Tensor()});
    else y.backward(g);
    layer.zero_grad();
  };
  auto dense_fwd = [&] {
    NoGradGuard ng;
    dense.forward(x);
  };
  auto dense_fwd_bwd = [&] {
    Tensor xi = x.detach().requires_grad_();
    dense.forward(xi).backward(g);
    dense.zero_grad();
  };
  // Rows the experts process: kept assignments (token choice), or every slot (Soft MoE).
  moe::RoutingLog log(true);
  {
    nn::ForwardContext ctx;
    ctx.routing = &log;
    layer.forward(x, ctx);
  }
  int64_t R = 0;
  if (soft) {
    const int64_t slots = cfg.option_int("slots_per_expert");
    R = c.experts * (slots > 0 ? slots : std::max<int64_t>(1, std::llround(cfg.capacity_factor * double(c.tokens) / c.experts)));
  } else {
    for (uint8_t kept : log.record(layer.path())->slot_kept) R += kept;
  }
  // Raw sgemm on the dense FFN's first GEMM: (T, d) x (d, k f).
  int64_t M = c.tokens, K = c.d_model, N = c.top_k * c.d_ff;
  std::vector<float> A(static_cast<size_t>(M * K), 0.5f), B(static_cast<size_t>(K * N), 0.25f), C(static_cast<size_t>(M * N));
  std::vector<double> A64(A.begin(), A.end()), B64(B.begin(), B.end()), C64(C.size());
  Tensor Ad = Tensor::from_vector(A, Shape{M, K}).to(o.dtype).to(o.device);
  Tensor Bd = Tensor::from_vector(B, Shape{K, N}).to(o.dtype).to(o.device);
  auto sgemm = [&] {
    if (on_host && o.dtype == DType::f64) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0, A64.data(), K, B64.data(), N, 0.0, C64.data(), N);
    } else if (on_host) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
    } else {
      NoGradGuard ng;
      (void)matmul(Ad, Bd);  // cuBLAS
    }
  };

  reset_peak_memory(o.device);  // the case's peak: its layer, dense FFN and inputs are already allocated
  for (int w = 0; w < o.warmup; ++w) {
    moe_fwd_bwd();
    dense_fwd_bwd();
    sgemm();
  }
  // The layer's own time inside the grouped expert FFN kernels gives the share of everything else.
  moe::set_expert_timing(true);
  std::vector<double> t_mf, t_mfb, t_df, t_dfb, t_gemm, share_f, share_fb, t_ef, t_efb;
  auto timed_with_share = [&](auto&& f, std::vector<double>& t, std::vector<double>& te, std::vector<double>& share) {
    moe::reset_expert_time();
    double s = time_once(f);
    t.push_back(s);
    te.push_back(moe::expert_time_seconds());
    share.push_back(1.0 - moe::expert_time_seconds() / s);
  };
  for (int r = 0; r < o.repeats; ++r) {
    timed_with_share(moe_fwd, t_mf, t_ef, share_f);
    t_df.push_back(time_once(dense_fwd));
    timed_with_share(moe_fwd_bwd, t_mfb, t_efb, share_fb);
    t_dfb.push_back(time_once(dense_fwd_bwd));
    t_gemm.push_back(time_once(sgemm));
  }
  moe::set_expert_timing(false);
  double mf = median(t_mf), mfb = median(t_mfb), df = median(t_df), dfb = median(t_dfb);
  double efb = median(t_efb), tg = median(t_gemm);
  auto share_text = [&](const std::vector<double>& v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", median(v));
    return on_host ? std::string(buf) : std::string("null");
  };
  double mats = cfg.activation == ExpertActivation::swiglu ? 3.0 : 2.0;
  double active_fwd_flops = 2.0 * double(R) * double(c.d_model) * double(layer.expert_d_ff()) * mats;
  double dense_fwd_flops = 2.0 * double(c.tokens) * double(c.d_model) * double(mo.hidden) * mats;
  double active = 3.0 * active_fwd_flops / mfb / 1e9, dense_rate = 3.0 * dense_fwd_flops / dfb / 1e9;
  double gemm_rate = 2.0 * double(M) * double(N) * double(K) / tg / 1e9;
  const uint64_t peak = peak_memory_bytes(o.device);
  std::printf("{\"bench\": \"moe\", %s, ", machine_json(o.device, o.dtype, peak).c_str());
  std::printf(
      "\"tokens\": %ld, \"d_model\": %ld, \"d_ff\": %ld, \"experts\": %ld, \"top_k\": %ld, "
      "\"router\": \"%s\", \"capacity_factor\": %g, \"activation\": \"%s\", \"threads\": %d, \"rows\": %ld, "
      "\"dropped_fraction\": %.4f, \"fwd_ms\": %.3f, \"fwd_bwd_ms\": %.3f, \"dense_fwd_ms\": %.3f, "
      "\"dense_fwd_bwd_ms\": %.3f, \"experts_fwd_bwd_ms\": %.3f, \"active_gflops\": %.2f, \"dense_gflops\": %.2f, "
      "\"ratio\": %.3f, \"fwd_ratio\": %.3f, \"dispatch_share\": %s, \"fwd_dispatch_share\": %s, "
      "\"gemm_gflops\": %.2f, \"active_vs_gemm\": %.3f}\n",
      long(c.tokens), long(c.d_model), long(c.d_ff), long(c.experts), long(c.top_k), cfg.router.c_str(),
      cfg.capacity_mode == moe::CapacityMode::capacity ? cfg.capacity_factor : 0.0,
      moe::activation_name(cfg.activation), omp_get_max_threads(), long(R), log.find(layer.path())->dropped_fraction(),
      mf * 1e3, mfb * 1e3, df * 1e3, dfb * 1e3, efb * 1e3, active, dense_rate, active / dense_rate,
      (active_fwd_flops / mf) / (dense_fwd_flops / df), share_text(share_fb).c_str(), share_text(share_f).c_str(),
      gemm_rate, active / gemm_rate);
  std::fflush(stdout);
}

int bench_moe_main(int argc, char** argv) {
  Options o;
  try {
    if (!parse(argc, argv, o)) return 0;
    for (const Case& c : o.cases) run_case(c, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moelab bench moe: %s\n", e.what());
    return 2;
  }
  return 0;
}

BenchRegistration reg{"moe", "MoE layer vs a dense FFN of the same active FLOPs; dispatch share", &bench_moe_main};

}  // namespace
}  // namespace moelab::bench
