// `moelab bench ops`: our matmul op against raw OpenBLAS cblas_sgemm at several sizes, one pre-LN
// transformer block's forward + backward against the time its GEMM FLOPs take as raw sgemm calls, and
// attention forward + backward: the fused op against the composed one and against its GEMMs as raw sgemm.
// Both sides are measured in the same run, interleaved; each figure is the median of the repeats
// after a warm-up. Prints a table and one JSON line per row.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/lib/bench.h"
#include "bench/lib/bench_machine.h"
#include "core/backend/device_select.h"
#include "core/backend/kernel_support.h"
#include "core/autograd/autograd.h"
#include "core/nn/transformer.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"
#include "core/tensor/storage.h"
#include "core/util/rng.h"

namespace moelab::bench {
namespace {

// The device the rows run on: timings wait for its queued work.
Device g_device = Device::cpu();

template <typename F> double time_once(F&& f) {
  Backend& be = backend_for(g_device);
  be.synchronize();
  double t0 = now_s();
  f();
  be.synchronize();
  return now_s() - t0;
}

const char* raw_gemm_name(Device device, DType dtype) {
  return device.is_cpu() ? (dtype == DType::f64 ? "cblas_dgemm" : "cblas_sgemm") : "cublas";
}

// GEMMs of the library the ops use, into preallocated buffers: cblas_sgemm / cblas_dgemm on the host, the
// backend's matmul kernel (cuBLAS) on cuda. Operands are the leading elements of three flat buffers.
class RawGemm {
 public:
  RawGemm(Device device, DType dtype, int64_t elements) : device_(device), dtype_(dtype) {
    RngStream rng(1, "bench");
    for (Tensor* t : {&a_, &b_, &c_}) *t = rand_normal(Shape{elements}, 0, 1, rng, dtype).to(device);
  }
  // C (m, n) = op(A) op(B), op(A) (m, k), op(B) (k, n); A stored (k, m) when ta, B (n, k) when tb.
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
    if (device_.is_cpu()) {
      const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
      const int lda = int(ta ? m : k), ldb = int(tb ? k : n);
      if (dtype_ == DType::f64)
        cblas_dgemm(CblasRowMajor, TA, TB, int(m), int(n), int(k), 1.0, a_.data<double>(), lda, b_.data<double>(),
                    ldb, 0.0, c_.data<double>(), int(n));
      else
        cblas_sgemm(CblasRowMajor, TA, TB, int(m), int(n), int(k), 1.0f, a_.data<float>(), lda, b_.data<float>(),
                    ldb, 0.0f, c_.data<float>(), int(n));
      return;
    }
    Tensor a = a_.slice(0, 0, m * k).view(ta ? Shape{1, k, m} : Shape{1, m, k});
    Tensor b = b_.slice(0, 0, k * n).view(tb ? Shape{1, n, k} : Shape{1, k, n});
    Tensor c = c_.slice(0, 0, m * n).view(Shape{1, m, n});
    backend_for(device_).matmul(a, b, c, ta, tb, 1.0, 0.0);
  }

 private:
  Device device_;
  DType dtype_;
  Tensor a_, b_, c_;
};

struct AttentionBenchOptions {
  std::vector<int64_t> tokens = {256, 1024}, batches = {1, 8};
  int64_t heads = 4, head_dim = 64;
  int repeats = 0;
  bool quick = false;
  Device device = Device::cpu();
  DType dtype = DType::f32;
};

struct Options {
  std::vector<int64_t> sizes = {256, 512, 1024, 2048};
  std::vector<int64_t> block_tokens = {256, 1024};
  int64_t block_dim = 256, block_heads = 4, block_batch = 1;
  int repeats = 0;  // 0: chosen per size (about a second per row)
  bool quick = false;
  AttentionBenchOptions attention;
  bool attention_only = false;
  bool support = false;
  Device device = Device::cpu();
  DType dtype = DType::f32;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--sizes 256,512,1024,2048] [--tokens 256,1024] [--dim 256] [--heads 4] [--batch 1] [--repeats N] "
      "[--quick] [--attention-tokens 256,1024] [--attention-batches 1,8] [--attention-only] [--support]\n"
      "       [--device cpu|cuda[:N]] [--dtype f32|f64]\n"
      "  Every row runs on --device in --dtype; the raw GEMMs are cblas_sgemm (dgemm for f64) on the host and the\n"
      "  backend's matmul kernel (cuBLAS) on cuda. Each JSON row names the device, the CPU model and ISA (or the GPU),\n"
      "  the dtype and its peak memory (peak RSS of the process on the host, the allocator pool's high-water mark\n"
      "  on cuda) during the row.\n"
      "  --support: print which kernels each backend (ref, cpu, cuda) runs per dtype, and exit.\n"
      "  matmul rows: GFLOP/s of moelab's matmul op (f32, includes allocating the output) and of cblas_sgemm into a\n"
      "  preallocated output, median of repeats after warm-up; ratio = op / sgemm.\n"
      "  block rows (one per --tokens value): forward+backward of one pre-LN transformer block (B, T, d), GELU MLP 4d;\n"
      "  efficiency = (block GEMM FLOPs / sgemm rate) / measured time, the sgemm rate measured on the block's own\n"
      "  GEMM shapes (forward and backward) interleaved with the block runs; also given against the best square rate.\n"
      "  attention rows: fused scaled_dot_product_attention forward+backward (H 4, D 64; no mask and causal)\n"
      "  against the composed op (matmul + masked softmax) and against its six GEMMs per head as raw sgemm, all\n"
      "  interleaved; peak extra bytes = host allocator high-water mark during one step minus the bytes in use\n"
      "  before it (outputs and gradients included).\n",
      argv0);
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    auto list = [&]() { return parse_int_list(value()); };
    if (a == "--sizes") o.sizes = list();
    else if (a == "--attention-tokens") o.attention.tokens = list();
    else if (a == "--attention-batches") o.attention.batches = list();
    else if (a == "--attention-only") o.attention_only = true;
    else if (a == "--support") o.support = true;
    else if (a == "--tokens") o.block_tokens = list();
    else if (a == "--dim") o.block_dim = std::stoll(value());
    else if (a == "--heads") o.block_heads = std::stoll(value());
    else if (a == "--batch") o.block_batch = std::stoll(value());
    else if (a == "--repeats") o.repeats = std::stoi(value());
    else if (a == "--quick") o.quick = true;
    else if (a == "--device") o.device = resolve_device(value());
    else if (a == "--dtype") o.dtype = parse_bench_dtype(value());
    else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      return false;
    } else {
      throw std::runtime_error("unknown argument '" + a + "' (see --help)");
    }
  }
  return true;
}

int repeats_for(const Options& o, double flops) {
  if (o.repeats > 0) return o.repeats;
  // About 0.5 s per side at 100 GFLOP/s, between 5 and 200 repeats.
  int r = static_cast<int>(0.5 * 100e9 / flops);
  if (o.quick) r /= 10;
  return std::clamp(r, o.quick ? 3 : 5, 200);
}

struct MatmulRow {
  int64_t n;
  double op_gflops, raw_gflops;
  uint64_t peak;
};

MatmulRow bench_matmul(int64_t n, const Options& o) {
  RngStream rng(0, "bench");
  Tensor a = rand_normal(Shape{n, n}, 0, 1, rng, o.dtype).to(o.device);
  Tensor b = rand_normal(Shape{n, n}, 0, 1, rng, o.dtype).to(o.device);
  RawGemm raw(o.device, o.dtype, n * n);
  auto run_raw = [&] { raw.gemm(false, false, n, n, n); };
  auto run_op = [&] {
    Tensor out = matmul(a, b);
    (void)out;
  };
  const double flops = 2.0 * double(n) * double(n) * double(n);
  int reps = repeats_for(o, flops);
  reset_peak_memory(o.device);
  for (int w = 0; w < 2; ++w) run_raw(), run_op();
  std::vector<double> t_op, t_blas;
  for (int r = 0; r < reps; ++r) {  // interleaved, so both sides see the same machine load
    t_blas.push_back(time_once(run_raw));
    t_op.push_back(time_once(run_op));
  }
  return {n, flops / median(t_op) / 1e9, flops / median(t_blas) / 1e9, peak_memory_bytes(o.device)};
}

struct BlockRow {
  int64_t batch, tokens, dim, heads;
  double flops, ms, gemm_ms, gemm_gflops, efficiency;
  uint64_t peak;
};

// The block's GEMMs, forward and backward, as raw GEMM calls on preallocated buffers: each forward
// product (M, N, K) is followed by its two backward products (M, K, N) and (K, N, M).
class BlockGemms {
 public:
  BlockGemms(int64_t B, int64_t T, int64_t d, int64_t H, Device device, DType dtype)
      : raw_(device, dtype, biggest(B, T, d, H)) {
    shapes_ = block_shapes(B, T, d, H);
  }
  double flops() const {
    double f = 0;
    for (const auto& g : shapes_) f += 3 * 2.0 * g.m * g.n * g.k * g.count;
    return f;
  }
  void run() {
    for (const auto& g : shapes_)
      for (int64_t i = 0; i < g.count; ++i) {
        raw_.gemm(false, false, g.m, g.n, g.k);
        raw_.gemm(false, false, g.m, g.k, g.n);
        raw_.gemm(false, false, g.k, g.n, g.m);
      }
  }

 private:
  struct Shape3 {
    int64_t m, n, k, count;
  };
  static std::vector<Shape3> block_shapes(int64_t B, int64_t T, int64_t d, int64_t H) {
    const int64_t Dh = d / H;
    std::vector<Shape3> shapes;
    for (int64_t n : {3 * d, d, 4 * d}) shapes.push_back({B * T, n, d, 1});  // qkv, proj, fc1
    shapes.push_back({B * T, d, 4 * d, 1});                                   // fc2
    shapes.push_back({T, T, Dh, B * H});                                      // scores per head
    shapes.push_back({T, Dh, T, B * H});                                      // values per head
    return shapes;
  }
  static int64_t biggest(int64_t B, int64_t T, int64_t d, int64_t H) {
    int64_t most = 0;
    for (const auto& g : block_shapes(B, T, d, H)) most = std::max({most, g.m * g.k, g.k * g.n, g.m * g.n});
    return most;
  }
  RawGemm raw_;
  std::vector<Shape3> shapes_;
};

BlockRow bench_block(const Options& o, int64_t T) {
  const int64_t B = o.block_batch, d = o.block_dim;
  RngStream rng(0, "bench");
  nn::TransformerBlockOptions bo;
  bo.dim = d;
  bo.num_heads = o.block_heads;
  bo.activation = nn::Activation::gelu_tanh;
  bo.dtype = o.dtype;
  nn::TransformerBlock block(bo, rng);
  block.to(o.device);
  Tensor x = rand_normal(Shape{B, T, d}, 0, 1, rng, o.dtype).to(o.device).requires_grad_();
  Tensor gy = rand_normal(Shape{B, T, d}, 0, 1, rng, o.dtype).to(o.device);
  auto step = [&] {
    block.zero_grad();
    x.zero_grad();
    Tensor y = block.forward(x);
    y.backward(gy);
  };
  BlockGemms gemms(B, T, d, o.block_heads, o.device, o.dtype);
  // GEMM FLOPs: projections 2*B*T*d*(3d + d + 4d + 4d) = 24 B T d^2; attention scores and values
  // 2 * 2*B*T*T*d; backward costs twice the forward.
  const double flops = gemms.flops();
  int reps = std::max(repeats_for(o, flops), 10);
  reset_peak_memory(o.device);
  for (int w = 0; w < 3; ++w) step(), gemms.run();
  std::vector<double> t, tg;
  for (int r = 0; r < reps; ++r) {  // interleaved with the same GEMMs run as raw library calls
    t.push_back(time_once(step));
    tg.push_back(time_once([&] { gemms.run(); }));
  }
  double ms = median(t) * 1e3, gemm_ms = median(tg) * 1e3;
  return {B, T, d, o.block_heads, flops, ms, gemm_ms, flops / (gemm_ms * 1e6), gemm_ms / ms,
          peak_memory_bytes(o.device)};
}

// ---- attention rows ----

// One attention layer's six GEMMs per head as raw GEMM calls on preallocated (T, D) and (T, T)
// buffers: forward S = Q K^T, O = P V; backward dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q.
class AttentionGemms {
 public:
  AttentionGemms(int64_t heads, int64_t T, int64_t D, Device device, DType dtype)
      : heads_(heads), T_(T), D_(D), raw_(device, dtype, std::max(T * T, T * D)) {}
  double flops() const { return 6 * 2.0 * double(T_) * double(T_) * double(D_) * double(heads_); }
  void run() {
    const int64_t T = T_, D = D_;
    for (int64_t h = 0; h < heads_; ++h) {
      raw_.gemm(false, true, T, T, D);   // S = Q K^T
      raw_.gemm(false, false, T, D, T);  // O = P V
      raw_.gemm(true, false, T, D, T);   // dV = P^T dO
      raw_.gemm(false, true, T, T, D);   // dP = dO V^T
      raw_.gemm(false, false, T, D, T);  // dQ = dS K
      raw_.gemm(true, false, T, D, T);   // dK = dS^T Q
    }
  }

 private:
  int64_t heads_, T_, D_;
  RawGemm raw_;
};

struct AttentionRow {
  int64_t batch, tokens;
  bool causal;
  double fused_ms, composed_ms, gemm_ms, gemm_gflops;
  size_t fused_peak, composed_peak;
  uint64_t peak;
};

// Peak allocator bytes above the bytes in use before f runs (the host allocator, or the cuda pool).
template <typename F> size_t peak_extra_bytes(Device device, F&& f) {
  if (device.is_cuda()) {
    cuda_reset_memory_high_water(device.index);  // restarts at the bytes in use now
    const uint64_t before = cuda_memory_high_water(device.index);
    f();
    backend_for(device).synchronize();
    return size_t(cuda_memory_high_water(device.index) - before);
  }
  size_t before = host_allocator_stats().bytes_in_use;
  host_allocator_reset_peak();
  f();
  return host_allocator_stats().peak_bytes_in_use - before;
}

AttentionRow bench_attention_row(const AttentionBenchOptions& o, int64_t B, int64_t T, bool causal) {
  const int64_t H = o.heads, D = o.head_dim;
  RngStream rng(3, "bench");
  auto input = [&] { return rand_normal(Shape{B, H, T, D}, 0, 1, rng, o.dtype).to(o.device); };
  Tensor q = input().requires_grad_(), k = input().requires_grad_(), v = input().requires_grad_();
  Tensor gy = input();
  AttentionMask mask;
  mask.causal = causal;
  auto step = [&](bool fused) {
    for (Tensor* x : {&q, &k, &v}) x->zero_grad();
    Tensor y = fused ? scaled_dot_product_attention(q, k, v, mask)
                     : detail::scaled_dot_product_attention_composed(q, k, v, mask);
    y.backward(gy);
  };
  AttentionGemms gemms(B * H, T, D, o.device, o.dtype);
  reset_peak_memory(o.device);
  int reps = o.repeats > 0 ? o.repeats : std::clamp(int(2.0 * 100e9 / gemms.flops()), 5, 100);
  if (o.quick && o.repeats == 0) reps = std::max(3, reps / 10);
  for (int w = 0; w < 2; ++w) step(true), step(false), gemms.run();
  std::vector<double> tf, tc, tg;
  for (int r = 0; r < reps; ++r) {  // interleaved: the three sides see the same machine load
    tf.push_back(time_once([&] { step(true); }));
    tc.push_back(time_once([&] { step(false); }));
    tg.push_back(time_once([&] { gemms.run(); }));
  }
  for (Tensor* x : {&q, &k, &v}) x->zero_grad();
  const uint64_t peak = peak_memory_bytes(o.device);
  size_t fused_peak = peak_extra_bytes(o.device, [&] { step(true); });
  for (Tensor* x : {&q, &k, &v}) x->zero_grad();
  size_t composed_peak = peak_extra_bytes(o.device, [&] { step(false); });
  double gemm_ms = median(tg) * 1e3;
  return {B, T, causal, median(tf) * 1e3, median(tc) * 1e3, gemm_ms, gemms.flops() / (gemm_ms * 1e6), fused_peak,
          composed_peak, peak};
}

// Prints the attention table; returns its JSON lines.
std::vector<std::string> bench_attention(const AttentionBenchOptions& o) {
  std::vector<std::string> json;
  if (o.tokens.empty() || o.batches.empty()) return json;
  std::printf("\nattention fwd+bwd, %s, H=%lld, D=%lld: fused op vs composed op (matmul + masked softmax) vs its\n"
              "6 GEMMs per head as raw library GEMMs (full T x T, also for causal); ratios are of medians in this run\n",
              std::string(dtype_name(o.dtype)).c_str(), static_cast<long long>(o.heads),
              static_cast<long long>(o.head_dim));
  std::printf("%-5s %-3s %-7s %10s %12s %10s %14s %14s %14s %14s\n", "T", "B", "mask", "fused ms", "composed ms",
              "sgemm ms", "composed/fused", "sgemm/fused", "fused MiB", "composed MiB");
  for (int64_t T : o.tokens)
    for (int64_t B : o.batches)
      for (bool causal : {false, true}) {
        AttentionRow r = bench_attention_row(o, B, T, causal);
        const double mib = 1.0 / (1024.0 * 1024.0);
        std::printf("%-5lld %-3lld %-7s %10.2f %12.2f %10.2f %14.3f %14.3f %14.2f %14.2f\n",
                    static_cast<long long>(T), static_cast<long long>(B), causal ? "causal" : "none", r.fused_ms,
                    r.composed_ms, r.gemm_ms, r.composed_ms / r.fused_ms, r.gemm_ms / r.fused_ms,
                    double(r.fused_peak) * mib, double(r.composed_peak) * mib);
        std::fflush(stdout);
        char buf[1536];
        std::snprintf(buf, sizeof buf,
                      "{\"bench\":\"ops\",\"row\":\"attention\",%s,\"raw_gemm\":\"%s\",\"batch\":%lld,\"tokens\":%lld,\"heads\":%lld,"
                      "\"head_dim\":%lld,\"mask\":\"%s\",\"fused_ms\":%.3f,\"composed_ms\":%.3f,\"sgemm_ms\":%.3f,"
                      "\"sgemm_gflops\":%.2f,\"composed_over_fused\":%.4f,\"sgemm_over_fused\":%.4f,"
                      "\"fused_peak_extra_bytes\":%zu,\"composed_peak_extra_bytes\":%zu,\"threads\":%d}",
                      machine_json(o.device, o.dtype, r.peak).c_str(), raw_gemm_name(o.device, o.dtype),
                      static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(o.heads),
                      static_cast<long long>(o.head_dim), causal ? "causal" : "none", r.fused_ms, r.composed_ms,
                      r.gemm_ms, r.gemm_gflops, r.composed_ms / r.fused_ms, r.gemm_ms / r.fused_ms, r.fused_peak,
                      r.composed_peak, omp_get_max_threads());
        json.push_back(buf);
      }
  return json;
}

// Kernel x dtype support of every backend (Backend::supports), a table and one JSON line per backend.
void print_support_matrix() {
  std::vector<std::pair<const char*, Backend*>> backends = {{"ref", &ref_backend()}, {"cpu", &cpu_backend()},
                                                            {"cuda", &cuda_backend()}};
  std::printf("kernel support (f32 f64 i32 i64 per backend; cuda: %s)\n",
              cuda_backend().available() ? cuda_device_summary(0).c_str() : "not available here");
  std::printf("%-26s", "kernel");
  for (auto& [name, be] : backends) std::printf(" %-12s", name);
  std::printf("\n");
  for (Kernel k : all_kernels()) {
    std::printf("%-26s", kernel_name(k));
    for (auto& [name, be] : backends) {
      std::string cell;
      for (DType dt : support_dtypes()) cell += be->supports(k, dt) ? "x" : ".";
      std::printf(" %-12s", cell.c_str());
    }
    std::printf("\n");
  }
  for (auto& [name, be] : backends) {
    nlohmann::ordered_json j;
    j["bench"] = "ops";
    j["row"] = "support";
    j["backend"] = name;
    j["available"] = be->available();
    for (Kernel k : all_kernels()) {
      std::vector<std::string> dts;
      for (DType dt : support_dtypes())
        if (be->supports(k, dt)) dts.emplace_back(dtype_name(dt));
      j["kernels"][kernel_name(k)] = dts;
    }
    std::printf("%s\n", j.dump().c_str());
  }
}

int bench_ops_main(int argc, char** argv) {
  Options o;
  try {
    if (!parse(argc, argv, o)) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
  if (o.support) {
    print_support_matrix();
    return 0;
  }
  g_device = o.device;
  o.attention.device = o.device;
  o.attention.dtype = o.dtype;
  const char* raw = raw_gemm_name(o.device, o.dtype);
  std::printf("bench ops: %d OpenMP threads, OpenBLAS %s\n  on %s\n", omp_get_max_threads(), openblas_get_config(),
              machine_line(o.device, o.dtype).c_str());
  o.attention.repeats = o.repeats;
  o.attention.quick = o.quick;
  if (o.attention_only) {
    for (const auto& j : bench_attention(o.attention)) std::printf("%s\n", j.c_str());
    return 0;
  }
  std::printf("%-8s %14s %14s %8s   (raw: %s)\n", "n", "op GFLOP/s", "raw GFLOP/s", "ratio", raw);
  std::vector<std::string> json;
  double best_raw = 0;
  for (int64_t n : o.sizes) {
    MatmulRow r = bench_matmul(n, o);
    best_raw = std::max(best_raw, r.raw_gflops);
    std::printf("%-8lld %14.1f %14.1f %8.3f\n", static_cast<long long>(n), r.op_gflops, r.raw_gflops,
                r.op_gflops / r.raw_gflops);
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "{\"bench\":\"ops\",\"row\":\"matmul\",%s,\"raw_gemm\":\"%s\",\"n\":%lld,\"op_gflops\":%.2f,"
                  "\"sgemm_gflops\":%.2f,\"ratio\":%.4f,\"threads\":%d}",
                  machine_json(o.device, o.dtype, r.peak).c_str(), raw, static_cast<long long>(n), r.op_gflops,
                  r.raw_gflops, r.op_gflops / r.raw_gflops, omp_get_max_threads());
    json.push_back(buf);
    std::fflush(stdout);
  }
  for (int64_t tokens : o.block_tokens) {
    BlockRow b = bench_block(o, tokens);
    std::printf("\ntransformer block fwd+bwd (B=%lld, T=%lld, d=%lld, heads=%lld, MLP 4d GELU)\n",
                static_cast<long long>(b.batch), static_cast<long long>(b.tokens), static_cast<long long>(b.dim),
                static_cast<long long>(b.heads));
    std::printf("  GEMM FLOPs %.3f G; measured %.2f ms; the same GEMMs as raw %s %.2f ms (%.1f GFLOP/s); "
                "efficiency %.3f\n",
                b.flops / 1e9, b.ms, raw, b.gemm_ms, b.gemm_gflops, b.efficiency);
    if (best_raw > 0)
      std::printf("  at the best square GEMM rate of this run (%.1f GFLOP/s): %.2f ms, efficiency %.3f\n", best_raw,
                  b.flops / (best_raw * 1e6), b.flops / (best_raw * 1e6) / b.ms);
    std::fflush(stdout);
    char buf[1536];
    std::snprintf(buf, sizeof buf,
                  "{\"bench\":\"ops\",\"row\":\"block\",%s,\"raw_gemm\":\"%s\",\"batch\":%lld,\"tokens\":%lld,"
                  "\"dim\":%lld,\"heads\":%lld,\"gflop\":%.4f,\"ms\":%.3f,\"gemm_ms\":%.3f,\"gemm_gflops\":%.2f,"
                  "\"efficiency\":%.4f,\"best_square_sgemm_gflops\":%.2f,\"efficiency_vs_best_square\":%.4f,"
                  "\"threads\":%d}",
                  machine_json(o.device, o.dtype, b.peak).c_str(), raw, static_cast<long long>(b.batch),
                  static_cast<long long>(b.tokens), static_cast<long long>(b.dim), static_cast<long long>(b.heads),
                  b.flops / 1e9, b.ms, b.gemm_ms, b.gemm_gflops, b.efficiency, best_raw,
                  best_raw > 0 ? b.flops / (best_raw * 1e6) / b.ms : 0.0, omp_get_max_threads());
    json.push_back(buf);
  }
  std::printf("\n");
  for (const auto& j : bench_attention(o.attention)) json.push_back(j);
  for (const auto& j : json) std::printf("%s\n", j.c_str());
  return 0;
}

BenchRegistration reg{"ops",
                      "matmul op vs raw GEMMs; transformer block and attention fwd+bwd vs their GEMMs as raw GEMMs",
                      &bench_ops_main};

}  // namespace
}  // namespace moelab::bench
