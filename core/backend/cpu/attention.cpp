// cpu: fused scaled dot-product attention, flash-attention style. The forward streams key tiles through
// an online softmax per (batch, head, query tile) and keeps only out and the row log-sum-exp; the backward
// recomputes each (query tile, key tile) of probabilities from q, k and lse. Tile products are OpenBLAS
// GEMMs (single-threaded inside our parallel loops). Extra memory: per-thread tiles and delta (B, H, Tq).
// Every output element is summed in the same order for any thread count (see attention_backward).
#include "core/kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/backend/cpu/blas.h"
#include "core/backend/strided.h"
#include "core/backend/cpu/cpu_backend.h"
#include "core/kernels/fast_math.h"

namespace moelab {

namespace {

constexpr int64_t kQueryTile = 64, kKeyTile = 128;

struct Problem {
  int64_t B, H, Tq, Tk, D, Dv;
  bool causal;
  double scale;
  const int32_t* key_valid;  // (B, Tk) or null
  int64_t query_tiles() const { return (Tq + kQueryTile - 1) / kQueryTile; }
  int64_t key_tiles() const { return (Tk + kKeyTile - 1) / kKeyTile; }
  const int32_t* valid_row(int64_t b) const { return key_valid ? key_valid + b * Tk : nullptr; }
  // One past the last key any query of [i0, i1) sees (the tiles a query tile visits).
  int64_t key_end(int64_t i1) const { return kern::attention_key_end(i1 - 1, Tq, Tk, causal); }
  // The first query that sees any key at or after j0 (the query tiles a key tile visits).
  int64_t query_begin(int64_t j0) const { return causal ? std::clamp<int64_t>(j0 - (Tk - Tq), 0, Tq) : 0; }
};

Problem problem_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid, bool causal,
                   double scale) {
  return {q.size(0), q.size(1), q.size(2),
          k.size(2), q.size(3), v.size(3),
          causal,    scale,     key_valid.defined() ? key_valid.data<int32_t>() : nullptr};
}

// S (mq, nk; row stride kKeyTile) = scale * Q K^T for the tile's queries and keys.
template <typename T>
void tile_scores(const Problem& p, const T* qt, int64_t ldq, const T* kt, int64_t ldk, int64_t mq, int64_t nk,
                 T* S) {
  if (p.D == 0) {
    for (int64_t r = 0; r < mq; ++r) std::fill(S + r * kKeyTile, S + r * kKeyTile + nk, T(0));
    return;
  }
  cpu::gemm<T>(false, true, mq, nk, p.D, p.scale, qt, ldq, kt, ldk, 0.0, S, kKeyTile);
}

// Whether every query of [i0, i0 + mq) sees every key of [j0, j0 + nk).
bool tile_fully_seen(const Problem& p, const int32_t* valid, int64_t i0, int64_t j0, int64_t nk) {
  if (p.causal && j0 + nk > kern::attention_key_end(i0, p.Tq, p.Tk, true)) return false;
  if (valid)
    for (int64_t c = 0; c < nk; ++c)
      if (valid[j0 + c] == 0) return false;
  return true;
}

// Marks the scores of unseen keys with -inf (only called on tiles that have some).
template <typename T>
void mask_tile(const Problem& p, const int32_t* valid, int64_t i0, int64_t j0, int64_t mq, int64_t nk, T* S) {
  for (int64_t r = 0; r < mq; ++r) {
    int64_t end = kern::attention_key_end(i0 + r, p.Tq, p.Tk, p.causal);
    T* sr = S + r * kKeyTile;
    for (int64_t c = 0; c < nk; ++c)
      if (j0 + c >= end || (valid && valid[j0 + c] == 0)) sr[c] = -std::numeric_limits<T>::infinity();
  }
}

// Forward of one query tile: online softmax over its key tiles, then out /= rowsum and lse = max + log(sum).
// scratch: kQueryTile * kKeyTile + 2 * kQueryTile elements.
template <typename T>
void forward_tile(const Problem& p, const HeadView<T>& q, const HeadView<T>& k, const HeadView<T>& v, int64_t b,
                  int64_t h, int64_t qt, T* out, T* lse, T* scratch) {
  const int64_t i0 = qt * kQueryTile, mq = std::min(kQueryTile, p.Tq - i0);
  const int32_t* valid = p.valid_row(b);
  T *S = scratch, *m = S + kQueryTile * kKeyTile, *l = m + kQueryTile;
  T* o = out + ((b * p.H + h) * p.Tq + i0) * p.Dv;  // rows accumulate here, contiguous (mq, Dv)
  std::fill(o, o + mq * p.Dv, T(0));
  std::fill(m, m + mq, -std::numeric_limits<T>::infinity());
  std::fill(l, l + mq, T(0));
  const int64_t kend = p.key_end(i0 + mq);
  for (int64_t j0 = 0; j0 < kend; j0 += kKeyTile) {
    const int64_t nk = std::min(kKeyTile, kend - j0);
    tile_scores(p, q.row(b, h, i0), q.s.row, k.row(b, h, j0), k.s.row, mq, nk, S);
    if (!tile_fully_seen(p, valid, i0, j0, nk)) mask_tile(p, valid, i0, j0, mq, nk, S);
    for (int64_t r = 0; r < mq; ++r) {
      T* sr = S + r * kKeyTile;
      T mx = m[r];
#pragma omp simd reduction(max : mx)
      for (int64_t c = 0; c < nk; ++c) mx = sr[c] > mx ? sr[c] : mx;
      if (mx == -std::numeric_limits<T>::infinity()) {  // nothing seen yet: p = 0, out stays 0
        std::fill(sr, sr + nk, T(0));
        continue;
      }
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < nk; ++c) {
        T e = sr[c] == -std::numeric_limits<T>::infinity() ? T(0) : kern::fast_exp<T>(sr[c] - mx);
        sr[c] = e;
        sum += e;
      }
      if (mx != m[r]) {  // rescale what was accumulated under the old max
        T alpha = m[r] == -std::numeric_limits<T>::infinity() ? T(0) : kern::fast_exp<T>(m[r] - mx);
        l[r] *= alpha;
        T* orow = o + r * p.Dv;
        for (int64_t d = 0; d < p.Dv; ++d) orow[d] *= alpha;
        m[r] = mx;
      }
      l[r] += sum;
    }
    if (p.Dv > 0)
      cpu::gemm<T>(false, false, mq, p.Dv, nk, 1.0, S, kKeyTile, v.row(b, h, j0), v.s.row, 1.0, o, p.Dv);
  }
  T* lrow = lse + (b * p.H + h) * p.Tq + i0;
  for (int64_t r = 0; r < mq; ++r) {
    T* orow = o + r * p.Dv;
    if (l[r] == T(0)) {  // the query sees no key
      std::fill(orow, orow + p.Dv, T(0));
      lrow[r] = -std::numeric_limits<T>::infinity();
      continue;
    }
    T inv = T(1) / l[r];
    for (int64_t d = 0; d < p.Dv; ++d) orow[d] *= inv;
    lrow[r] = m[r] + std::log(l[r]);
  }
}

// The backward of one (query tile, key tile) pair up to dS: P = exp(S - lse) on seen keys (0 elsewhere) in
// S, and dS = P * (dO V^T - delta) in dS. Both (mq, nk) with row stride kKeyTile.
template <typename T>
void backward_probs(const Problem& p, const HeadView<T>& q, const HeadView<T>& k, const HeadView<T>& v,
                    const HeadView<T>& go, const T* lse, const T* delta, int64_t b, int64_t h, int64_t i0,
                    int64_t mq, int64_t j0, int64_t nk, T* S, T* dS) {
  const int32_t* valid = p.valid_row(b);
  tile_scores(p, q.row(b, h, i0), q.s.row, k.row(b, h, j0), k.s.row, mq, nk, S);
  if (!tile_fully_seen(p, valid, i0, j0, nk)) mask_tile(p, valid, i0, j0, mq, nk, S);
  if (p.Dv > 0)
    cpu::gemm<T>(false, true, mq, nk, p.Dv, 1.0, go.row(b, h, i0), go.s.row, v.row(b, h, j0), v.s.row, 0.0, dS,
                 kKeyTile);
  else
    for (int64_t r = 0; r < mq; ++r) std::fill(dS + r * kKeyTile, dS + r * kKeyTile + nk, T(0));
  for (int64_t r = 0; r < mq; ++r) {
    T *sr = S + r * kKeyTile, *dr = dS + r * kKeyTile;
    const T lr = lse[i0 + r], dl = delta[i0 + r];
#pragma omp simd
    for (int64_t c = 0; c < nk; ++c) {
      T pr = sr[c] == -std::numeric_limits<T>::infinity() ? T(0) : kern::fast_exp<T>(sr[c] - lr);
      sr[c] = pr;
      dr[c] = pr * (dr[c] - dl);
    }
  }
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid,
                                   bool causal, double scale, Tensor& out, Tensor& lse) {
  const Problem p = problem_of(q, k, v, key_valid, causal, scale);
  const int64_t tasks = p.B * p.H * p.query_tiles();
  if (tasks == 0) return;
  dispatch_float(q.dtype(), "attention_forward", [&]<typename T>() {
    HeadView<T> qo(q), ko(k), vo(v);
    T *po = out.data<T>(), *pl = lse.data<T>();
    const int64_t per_thread = kQueryTile * kKeyTile + 2 * kQueryTile;
    // One scratch tensor for all threads (counted by the host allocator like any other buffer).
    Tensor scratch = Tensor::empty(Shape{omp_get_max_threads() * per_thread}, q.dtype());
    T* ps = scratch.data<T>();
    const int64_t nqt = p.query_tiles();
#pragma omp parallel for schedule(dynamic) if (tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t bh = t / nqt, b = bh / p.H, h = bh % p.H;
      forward_tile(p, qo, ko, vo, b, h, t % nqt, po, pl, ps + omp_get_thread_num() * per_thread);
    }
  });
}

// Two schedules with the same arithmetic: when there are at least as many heads as threads, one task per
// head runs key tiles in order and accumulates dq as it goes (5 tile GEMMs per pair); otherwise one task
// per key tile makes dk, dv and a second pass per query tile makes dq (7 per pair). Every tile is computed
// the same way and every output sums its tiles in increasing order, so the results are bitwise equal.
void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_valid, bool causal, double scale, const Tensor& out,
                                    const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk,
                                    Tensor& gv) {
  const Problem p = problem_of(q, k, v, key_valid, causal, scale);
  const int64_t heads = p.B * p.H;
  dispatch_float(q.dtype(), "attention_backward", [&]<typename T>() {
    T *pgq = gq.data<T>(), *pgk = gk.data<T>(), *pgv = gv.data<T>();
    std::fill(pgq, pgq + gq.numel(), T(0));
    std::fill(pgk, pgk + gk.numel(), T(0));
    std::fill(pgv, pgv + gv.numel(), T(0));
    if (heads == 0 || p.Tq == 0 || p.Tk == 0) return;
    HeadView<T> qo(q), ko(k), vo(v), goo(gout), oo(out);
    const T* pl = lse.data<T>();
    // delta = rowsum(dO * O): (B, H, Tq)
    Tensor delta_t = Tensor::empty(Shape{heads * p.Tq}, q.dtype());
    T* delta = delta_t.data<T>();
#pragma omp parallel for schedule(static) if (heads * p.Tq * p.Dv > 32768)
    for (int64_t r = 0; r < heads * p.Tq; ++r) {
      int64_t bh = r / p.Tq;
      const T *o = oo.row(bh / p.H, bh % p.H, r % p.Tq), *g = goo.row(bh / p.H, bh % p.H, r % p.Tq);
      T acc = 0;
      for (int64_t d = 0; d < p.Dv; ++d) acc += o[d] * g[d];
      delta[r] = acc;
    }
    const int64_t per_thread = 2 * kQueryTile * kKeyTile;
    Tensor scratch = Tensor::empty(Shape{omp_get_max_threads() * per_thread}, q.dtype());
    T* ps = scratch.data<T>();
    const int64_t nkt = p.key_tiles(), nqt = p.query_tiles();
    // dk, dv of key tile kt (and dq of its query tiles when with_dq) for head bh.
    auto key_tile = [&](int64_t bh, int64_t kt, bool with_dq, T* S) {
      const int64_t b = bh / p.H, h = bh % p.H, j0 = kt * kKeyTile, nk = std::min(kKeyTile, p.Tk - j0);
      T *dS = S + kQueryTile * kKeyTile, *dk = pgk + (bh * p.Tk + j0) * p.D,
        *dv = pgv + (bh * p.Tk + j0) * p.Dv;
      const T *hl = pl + bh * p.Tq, *hd = delta + bh * p.Tq;
      for (int64_t i0 = p.query_begin(j0) / kQueryTile * kQueryTile; i0 < p.Tq; i0 += kQueryTile) {
        const int64_t mq = std::min(kQueryTile, p.Tq - i0);
        backward_probs(p, qo, ko, vo, goo, hl, hd, b, h, i0, mq, j0, nk, S, dS);
        if (p.Dv > 0)
          cpu::gemm<T>(true, false, nk, p.Dv, mq, 1.0, S, kKeyTile, goo.row(b, h, i0), goo.s.row, 1.0, dv,
                       p.Dv);
        if (p.D > 0) {
          cpu::gemm<T>(true, false, nk, p.D, mq, p.scale, dS, kKeyTile, qo.row(b, h, i0), qo.s.row, 1.0, dk,
                       p.D);
          if (with_dq)
            cpu::gemm<T>(false, false, mq, p.D, nk, p.scale, dS, kKeyTile, ko.row(b, h, j0), ko.s.row, 1.0,
                         pgq + (bh * p.Tq + i0) * p.D, p.D);
        }
      }
    };
    if (heads >= omp_get_max_threads()) {
#pragma omp parallel for schedule(dynamic) if (heads > 1)
      for (int64_t bh = 0; bh < heads; ++bh)
        for (int64_t kt = 0; kt < nkt; ++kt) key_tile(bh, kt, true, ps + omp_get_thread_num() * per_thread);
      return;
    }
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < heads * nkt; ++t)
      key_tile(t / nkt, t % nkt, false, ps + omp_get_thread_num() * per_thread);
    if (p.D == 0) return;
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < heads * nqt; ++t) {
      const int64_t bh = t / nqt, b = bh / p.H, h = bh % p.H, i0 = (t % nqt) * kQueryTile;
      const int64_t mq = std::min(kQueryTile, p.Tq - i0), kend = p.key_end(i0 + mq);
      T *S = ps + omp_get_thread_num() * per_thread, *dS = S + kQueryTile * kKeyTile;
      for (int64_t j0 = 0; j0 < kend; j0 += kKeyTile) {
        const int64_t nk = std::min(kKeyTile, p.Tk - j0);
        backward_probs(p, qo, ko, vo, goo, pl + bh * p.Tq, delta + bh * p.Tq, b, h, i0, mq, j0, nk, S, dS);
        cpu::gemm<T>(false, false, mq, p.D, nk, p.scale, dS, kKeyTile, ko.row(b, h, j0), ko.s.row, 1.0,
                     pgq + (bh * p.Tq + i0) * p.D, p.D);
      }
    }
  });
}

}  // namespace moelab
