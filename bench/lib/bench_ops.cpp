// `moelab bench ops`: our matmul op against raw OpenBLAS cblas_sgemm at several sizes, and one pre-LN
// transformer block's forward + backward against the time its FLOPs would take at the sgemm rate.
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

#include "bench/lib/bench.h"
#include "core/autograd/autograd.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"
#include "core/util/rng.h"

namespace moelab::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
template <typename F> double time_once(F&& f) {
  double t0 = now_s();
  f();
  return now_s() - t0;
}

struct Options {
  std::vector<int64_t> sizes = {256, 512, 1024, 2048};
  int64_t block_tokens = 256, block_dim = 256, block_heads = 4, block_batch = 1;
  int repeats = 0;  // 0: chosen per size (about a second per row)
  bool quick = false;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--sizes 256,512,1024,2048] [--tokens 256] [--dim 256] [--heads 4] [--batch 1] [--repeats N] "
      "[--quick]\n"
      "  matmul rows: GFLOP/s of moelab's matmul op (f32, includes allocating the output) and of cblas_sgemm into a\n"
      "  preallocated output, median of repeats after warm-up; ratio = op / sgemm.\n"
      "  block row: forward+backward of one pre-LN transformer block (B, T, d), GELU MLP of width 4d;\n"
      "  efficiency = (block FLOPs / best sgemm rate of this run) / measured time.\n",
      argv0);
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sizes") {
      o.sizes.clear();
      std::string v = value();
      for (size_t p = 0; p < v.size();) {
        size_t q = v.find(',', p);
        o.sizes.push_back(std::stoll(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (a == "--tokens") o.block_tokens = std::stoll(value());
    else if (a == "--dim") o.block_dim = std::stoll(value());
    else if (a == "--heads") o.block_heads = std::stoll(value());
    else if (a == "--batch") o.block_batch = std::stoll(value());
    else if (a == "--repeats") o.repeats = std::stoi(value());
    else if (a == "--quick") o.quick = true;
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
  double op_gflops, sgemm_gflops;
};

MatmulRow bench_matmul(int64_t n, const Options& o) {
  RngStream rng(0, "bench");
  Tensor a = rand_normal(Shape{n, n}, 0, 1, rng), b = rand_normal(Shape{n, n}, 0, 1, rng);
  Tensor c = Tensor::zeros(Shape{n, n});
  const float *pa = a.data<float>(), *pb = b.data<float>();
  float* pc = c.data<float>();
  const int ni = static_cast<int>(n);
  auto run_sgemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, pa, ni, pb, ni, 0.0f, pc, ni);
  };
  auto run_op = [&] {
    Tensor out = matmul(a, b);
    (void)out;
  };
  const double flops = 2.0 * double(n) * double(n) * double(n);
  int reps = repeats_for(o, flops);
  for (int w = 0; w < 2; ++w) run_sgemm(), run_op();
  std::vector<double> t_op, t_blas;
  for (int r = 0; r < reps; ++r) {  // interleaved, so both sides see the same machine load
    t_blas.push_back(time_once(run_sgemm));
    t_op.push_back(time_once(run_op));
  }
  return {n, flops / median(t_op) / 1e9, flops / median(t_blas) / 1e9};
}

struct BlockRow {
  int64_t batch, tokens, dim, heads;
  double flops, ms, ideal_ms, efficiency;
};

BlockRow bench_block(const Options& o, double sgemm_gflops) {
  const int64_t B = o.block_batch, T = o.block_tokens, d = o.block_dim;
  RngStream rng(0, "bench");
  nn::TransformerBlockOptions bo;
  bo.dim = d;
  bo.num_heads = o.block_heads;
  bo.activation = nn::Activation::gelu_tanh;
  nn::TransformerBlock block(bo, rng);
  Tensor x = rand_normal(Shape{B, T, d}, 0, 1, rng).requires_grad_();
  Tensor gy = rand_normal(Shape{B, T, d}, 0, 1, rng);
  auto step = [&] {
    block.zero_grad();
    x.zero_grad();
    Tensor y = block.forward(x);
    y.backward(gy);
  };
  // GEMM FLOPs: projections 2*B*T*d*(3d + d + 4d + 4d) = 24 B T d^2; attention scores and values
  // 2 * 2*B*T*T*d; backward costs twice the forward.
  const double fwd = 24.0 * B * T * d * d + 4.0 * B * T * T * d;
  const double flops = 3.0 * fwd;
  int reps = std::max(repeats_for(o, flops), 10);
  for (int w = 0; w < 3; ++w) step();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(time_once(step));
  double ms = median(t) * 1e3, ideal_ms = flops / (sgemm_gflops * 1e9) * 1e3;
  return {B, T, d, o.block_heads, flops, ms, ideal_ms, ideal_ms / ms};
}

int bench_ops_main(int argc, char** argv) {
  Options o;
  try {
    if (!parse(argc, argv, o)) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
  std::printf("bench ops: %d OpenMP threads, OpenBLAS %s\n", omp_get_max_threads(), openblas_get_config());
  std::printf("%-8s %14s %14s %8s\n", "n", "op GFLOP/s", "sgemm GFLOP/s", "ratio");
  std::vector<MatmulRow> rows;
  std::vector<std::string> json;
  double best_sgemm = 0;
  for (int64_t n : o.sizes) {
    MatmulRow r = bench_matmul(n, o);
    best_sgemm = std::max(best_sgemm, r.sgemm_gflops);
    std::printf("%-8lld %14.1f %14.1f %8.3f\n", static_cast<long long>(n), r.op_gflops, r.sgemm_gflops,
                r.op_gflops / r.sgemm_gflops);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"bench\":\"ops\",\"row\":\"matmul\",\"n\":%lld,\"op_gflops\":%.2f,\"sgemm_gflops\":%.2f,"
                  "\"ratio\":%.4f,\"threads\":%d}",
                  static_cast<long long>(n), r.op_gflops, r.sgemm_gflops, r.op_gflops / r.sgemm_gflops,
                  omp_get_max_threads());
    json.push_back(buf);
    std::fflush(stdout);
  }
  if (best_sgemm <= 0) {  // no matmul sizes given: measure the rate at 1024 for the block figure
    best_sgemm = bench_matmul(1024, o).sgemm_gflops;
  }
  BlockRow b = bench_block(o, best_sgemm);
  std::printf("\ntransformer block fwd+bwd (B=%lld, T=%lld, d=%lld, heads=%lld, MLP 4d GELU)\n",
              static_cast<long long>(b.batch), static_cast<long long>(b.tokens), static_cast<long long>(b.dim),
              static_cast<long long>(b.heads));
  std::printf("  GEMM FLOPs %.3f G, measured %.2f ms, at the best sgemm rate (%.1f GFLOP/s) %.2f ms, "
              "efficiency %.3f\n\n",
              b.flops / 1e9, b.ms, best_sgemm, b.ideal_ms, b.efficiency);
  char buf[384];
  std::snprintf(buf, sizeof buf,
                "{\"bench\":\"ops\",\"row\":\"block\",\"batch\":%lld,\"tokens\":%lld,\"dim\":%lld,\"heads\":%lld,"
                "\"gflop\":%.4f,\"ms\":%.3f,\"sgemm_gflops\":%.2f,\"ideal_ms\":%.3f,\"efficiency\":%.4f,"
                "\"threads\":%d}",
                static_cast<long long>(b.batch), static_cast<long long>(b.tokens), static_cast<long long>(b.dim),
                static_cast<long long>(b.heads), b.flops / 1e9, b.ms, best_sgemm, b.ideal_ms, b.efficiency,
                omp_get_max_threads());
  json.push_back(buf);
  for (const auto& j : json) std::printf("%s\n", j.c_str());
  return 0;
}

BenchRegistration reg{"ops", "matmul op vs cblas_sgemm; transformer block fwd+bwd vs its FLOPs at the sgemm rate",
                      &bench_ops_main};

}  // namespace
}  // namespace moelab::bench
