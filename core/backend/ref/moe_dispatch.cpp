// ref: MoE routing plan, gather/scatter, combine and the grouped expert FFN as plain loops with double
// accumulation (the executable specification of docs/moe.md §3).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/backend/ref/ref_backend.h"

namespace moelab {

namespace {

double act_value(ExpertActivation act, double h) {
  switch (act) {
    case ExpertActivation::relu: return h > 0 ? h : 0.0;
    case ExpertActivation::gelu: return kern::unary<UnaryOp::gelu_tanh, double>(h, 0.0);
    case ExpertActivation::swiglu: return kern::unary<UnaryOp::silu, double>(h, 0.0);
  }
  return h;
}
double act_derivative(ExpertActivation act, double h) {
  switch (act) {
    case ExpertActivation::relu: return h > 0 ? 1.0 : 0.0;
    case ExpertActivation::gelu: return kern::unary_derivative<UnaryOp::gelu_tanh, double>(h, 0.0, 0.0);
    case ExpertActivation::swiglu: return kern::unary_derivative<UnaryOp::silu, double>(h, 0.0, 0.0);
  }
  return 1.0;
}

}  // namespace

void RefBackend::moe_plan(const Tensor& slot_expert, const Tensor& slot_priority, int64_t E, int64_t capacity,
                          Tensor& expert_counts, Tensor& expert_offsets, Tensor& row_slot, Tensor& slot_row) {
  int64_t S = slot_expert.numel();
  const int64_t* se = slot_expert.data<int64_t>();
  int64_t *counts = expert_counts.data<int64_t>(), *offsets = expert_offsets.data<int64_t>();
  int64_t *rs = row_slot.data<int64_t>(), *sr = slot_row.data<int64_t>();
  std::vector<std::vector<int64_t>> per_expert(static_cast<size_t>(E));
  for (int64_t s = 0; s < S; ++s) {
    MOELAB_CHECK(se[s] >= -1 && se[s] < E, "moe_plan: slot " << s << " names expert " << se[s] << " of " << E);
    if (se[s] >= 0) per_expert[se[s]].push_back(s);
  }
  std::fill(sr, sr + S, int64_t(-1));
  std::fill(rs, rs + S, int64_t(-1));
  offsets[0] = 0;
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int64_t>& slots = per_expert[e];
    counts[e] = static_cast<int64_t>(slots.size());
    if (capacity >= 0 && counts[e] > capacity) {
      if (slot_priority.defined()) {
        std::vector<double> prio(slots.size());
        dispatch_dtype(slot_priority.dtype(), [&]<typename T>() {
          for (size_t i = 0; i < slots.size(); ++i) prio[i] = static_cast<double>(slot_priority.data<T>()[slots[i]]);
        });
        std::vector<size_t> idx(slots.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return prio[a] > prio[b]; });
        std::vector<int64_t> kept;
        for (int64_t i = 0; i < capacity; ++i) kept.push_back(slots[idx[i]]);
        std::sort(kept.begin(), kept.end());
        slots = kept;
      } else {
        slots.resize(static_cast<size_t>(capacity));
      }
    }
    offsets[e + 1] = offsets[e] + static_cast<int64_t>(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      rs[offsets[e] + static_cast<int64_t>(i)] = slots[i];
      sr[slots[i]] = offsets[e] + static_cast<int64_t>(i);
    }
  }
}

void RefBackend::moe_gather_rows(const Tensor& x, const Tensor& slot_row, const Tensor& token_offsets,
                                 Tensor& x_rows) {
  int64_t T = x.size(0), d = x.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(x.dtype(), [&]<typename T_>() {
    const T_* px = x.data<T_>();
    T_* po = x_rows.data<T_>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = to[t]; s < to[t + 1]; ++s)
        if (sr[s] >= 0)
          for (int64_t j = 0; j < d; ++j) po[sr[s] * d + j] = px[t * d + j];
  });
}

void RefBackend::moe_scatter_rows(const Tensor& g_rows, const Tensor& slot_row, const Tensor& token_offsets,
                                  Tensor& gx) {
  int64_t T = gx.size(0), d = gx.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(gx.dtype(), [&]<typename T_>() {
    const T_* pg = g_rows.data<T_>();
    T_* po = gx.data<T_>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) {
        double acc = 0;
        for (int64_t s = to[t]; s < to[t + 1]; ++s)
          if (sr[s] >= 0) acc += static_cast<double>(pg[sr[s] * d + j]);
        po[t * d + j] = static_cast<T_>(acc);
      }
  });
}

void RefBackend::moe_combine(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                             const Tensor& token_offsets, Tensor& out) {
  int64_t T = out.size(0), d = out.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(out.dtype(), [&]<typename T_>() {
    const T_ *py = y_rows.data<T_>(), *pw = slot_weight.data<T_>();
    T_* po = out.data<T_>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) {
        double acc = 0;
        for (int64_t s = to[t]; s < to[t + 1]; ++s)
          if (sr[s] >= 0) acc += static_cast<double>(pw[s]) * static_cast<double>(py[sr[s] * d + j]);
        po[t * d + j] = static_cast<T_>(acc);
      }
  });
}

void RefBackend::moe_combine_backward(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                                      const Tensor& token_offsets, const Tensor& gout, Tensor& gy_rows,
                                      Tensor& gslot_weight) {
  int64_t T = gout.size(0), d = gout.size(1);
  const int64_t *sr = slot_row.data<int64_t>(), *to = token_offsets.data<int64_t>();
  dispatch_dtype(gout.dtype(), [&]<typename T_>() {
    const T_ *py = y_rows.data<T_>(), *pw = slot_weight.data<T_>(), *pg = gout.data<T_>();
    T_ *pgy = gy_rows.data<T_>(), *pgw = gslot_weight.data<T_>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = to[t]; s < to[t + 1]; ++s) {
        if (sr[s] < 0) {
          pgw[s] = T_(0);
          continue;
        }
        double dot = 0;
        for (int64_t j = 0; j < d; ++j) {
          dot += static_cast<double>(py[sr[s] * d + j]) * static_cast<double>(pg[t * d + j]);
          pgy[sr[s] * d + j] = static_cast<T_>(static_cast<double>(pw[s]) * static_cast<double>(pg[t * d + j]));
        }
        pgw[s] = static_cast<T_>(dot);
      }
  });
}

void RefBackend::moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                                Tensor& h, Tensor& g, Tensor& a, Tensor& y_rows) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2);
  const int64_t* off = expert_offsets.data<int64_t>();
  bool swiglu = w.act == ExpertActivation::swiglu;
  dispatch_float(x_rows.dtype(), "moe_expert_ffn", [&]<typename T_>() {
    const T_ *px = x_rows.data<T_>(), *w1 = w.w1.data<T_>(), *w2 = w.w2.data<T_>();
    const T_* b1 = w.b1.defined() ? w.b1.data<T_>() : nullptr;
    const T_* b2 = w.b2.defined() ? w.b2.data<T_>() : nullptr;
    const T_* w3 = swiglu ? w.w3.data<T_>() : nullptr;
    T_ *ph = h.data<T_>(), *pa = a.data<T_>(), *py = y_rows.data<T_>();
    T_* pgate = swiglu ? g.data<T_>() : nullptr;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t r = off[e]; r < off[e + 1]; ++r) {
        for (int64_t j = 0; j < f; ++j) {
          double acc = b1 ? static_cast<double>(b1[e * f + j]) : 0.0, acc3 = 0;
          for (int64_t i = 0; i < d; ++i) {
            acc += static_cast<double>(px[r * d + i]) * static_cast<double>(w1[(e * d + i) * f + j]);
            if (swiglu) acc3 += static_cast<double>(px[r * d + i]) * static_cast<double>(w3[(e * d + i) * f + j]);
          }
          ph[r * f + j] = static_cast<T_>(acc);
          double av = act_value(w.act, static_cast<double>(ph[r * f + j]));
          if (swiglu) {
            pgate[r * f + j] = static_cast<T_>(acc3);
            av *= static_cast<double>(pgate[r * f + j]);
          }
          pa[r * f + j] = static_cast<T_>(av);
        }
        for (int64_t j = 0; j < d; ++j) {
          double acc = b2 ? static_cast<double>(b2[e * d + j]) : 0.0;
          for (int64_t i = 0; i < f; ++i)
            acc += static_cast<double>(pa[r * f + i]) * static_cast<double>(w2[(e * f + i) * d + j]);
          py[r * d + j] = static_cast<T_>(acc);
        }
      }
  });
}

void RefBackend::moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets,
                                         const ExpertWeights& w, const Tensor& h, const Tensor& g, const Tensor& a,
                                         const Tensor& gy_rows, Tensor& gx_rows, ExpertWeights& grads) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2);
  const int64_t* off = expert_offsets.data<int64_t>();
  bool swiglu = w.act == ExpertActivation::swiglu;
  dispatch_float(x_rows.dtype(), "moe_expert_ffn_backward", [&]<typename T_>() {
    const T_ *px = x_rows.data<T_>(), *w1 = w.w1.data<T_>(), *w2 = w.w2.data<T_>();
    const T_* w3 = swiglu ? w.w3.data<T_>() : nullptr;
    const T_ *ph = h.data<T_>(), *pa = a.data<T_>(), *pgy = gy_rows.data<T_>();
    const T_* pgate = swiglu ? g.data<T_>() : nullptr;
    T_ *gx = gx_rows.data<T_>(), *gw1 = grads.w1.data<T_>(), *gw2 = grads.w2.data<T_>();
    T_* gb1 = grads.b1.defined() ? grads.b1.data<T_>() : nullptr;
    T_* gb2 = grads.b2.defined() ? grads.b2.data<T_>() : nullptr;
    T_* gw3 = swiglu ? grads.w3.data<T_>() : nullptr;
    for (int64_t e = 0; e < E; ++e) {
      int64_t r0 = off[e], r1 = off[e + 1];
      // Per-row gradients of the pre-activations: dh (and dg for swiglu).
      std::vector<double> dh(static_cast<size_t>((r1 - r0) * f)), dg(swiglu ? dh.size() : 0);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < f; ++i) {
          double da = 0;
          for (int64_t j = 0; j < d; ++j)
            da += static_cast<double>(pgy[r * d + j]) * static_cast<double>(w2[(e * f + i) * d + j]);
          double hv = static_cast<double>(ph[r * f + i]);
          size_t k = static_cast<size_t>((r - r0) * f + i);
          if (swiglu) {
            double gv = static_cast<double>(pgate[r * f + i]);
            dh[k] = da * gv * act_derivative(w.act, hv);
            dg[k] = da * act_value(w.act, hv);
          } else {
            dh[k] = da * act_derivative(w.act, hv);
          }
        }
      for (int64_t i = 0; i < f; ++i)
        for (int64_t j = 0; j < d; ++j) {
          double acc = 0;
          for (int64_t r = r0; r < r1; ++r)
            acc += static_cast<double>(pa[r * f + i]) * static_cast<double>(pgy[r * d + j]);
          gw2[(e * f + i) * d + j] = static_cast<T_>(acc);
        }
      if (gb2)
        for (int64_t j = 0; j < d; ++j) {
          double acc = 0;
          for (int64_t r = r0; r < r1; ++r) acc += static_cast<double>(pgy[r * d + j]);
          gb2[e * d + j] = static_cast<T_>(acc);
        }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < f; ++j) {
          double acc = 0, acc3 = 0;
          for (int64_t r = r0; r < r1; ++r) {
            size_t k = static_cast<size_t>((r - r0) * f + j);
            acc += static_cast<double>(px[r * d + i]) * dh[k];
            if (swiglu) acc3 += static_cast<double>(px[r * d + i]) * dg[k];
          }
          gw1[(e * d + i) * f + j] = static_cast<T_>(acc);
          if (swiglu) gw3[(e * d + i) * f + j] = static_cast<T_>(acc3);
        }
      if (gb1)
        for (int64_t j = 0; j < f; ++j) {
          double acc = 0;
          for (int64_t r = r0; r < r1; ++r) acc += dh[static_cast<size_t>((r - r0) * f + j)];
          gb1[e * f + j] = static_cast<T_>(acc);
        }
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < d; ++i) {
          double acc = 0;
          for (int64_t j = 0; j < f; ++j) {
            size_t k = static_cast<size_t>((r - r0) * f + j);
            acc += dh[k] * static_cast<double>(w1[(e * d + i) * f + j]);
            if (swiglu) acc += dg[k] * static_cast<double>(w3[(e * d + i) * f + j]);
          }
          gx[r * d + i] = static_cast<T_>(acc);
        }
    }
  });
}

}  // namespace moelab
