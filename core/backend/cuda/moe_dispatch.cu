// cuda: the MoE routing plan and row movement (docs/moe.md §3). The plan is sort-based and stays on the
// device: validate expert ids, stable radix sort of slots by expert (sort.cu; slot order inside each
// expert), segment starts = histogram + exclusive scan, capacity applied by rank within the segment
// (by priority through two more stable sorts when slot_priority is given), then one more stable sort
// puts the kept slots into rows. Gather, combine and their backward are one block per token adding its
// slots in slot order (double accumulation), so every result is deterministic without atomics.
//
// Host synchronization: moe_plan waits once, to report an invalid expert id (as the interface promises);
// the grouped GEMM then needs expert_offsets on the host (one small copy per layer; see moe_ffn.cu).
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/backend/cuda/sort.h"

namespace moelab {

using namespace cuda;

namespace {

// key = expert id, or E for unassigned (-1) slots (sorted last); bad ids are recorded.
__global__ void expert_keys_kernel(const int64_t* slot_expert, int64_t S, int64_t E, uint64_t* keys,
                                   int64_t* slots, unsigned long long* bad) {
  MOELAB_GRID_STRIDE(s, S) {
    int64_t e = slot_expert[s];
    if (e < -1 || e >= E) record_bad_index(bad, s);
    keys[s] = static_cast<uint64_t>(e >= 0 && e < E ? e : E);
    slots[s] = s;
  }
}

// starts[e] for e in [0, E]: the first sorted position whose key is >= e (S when none).
__global__ void segment_starts_kernel(const uint64_t* sorted_keys, int64_t S, int64_t E, int64_t* starts) {
  MOELAB_GRID_STRIDE(p, S) {
    int64_t key = static_cast<int64_t>(sorted_keys[p]);
    int64_t prev = p == 0 ? -1 : static_cast<int64_t>(sorted_keys[p - 1]);
    for (int64_t e = prev + 1; e <= key && e <= E; ++e) starts[e] = p;
    if (p == S - 1)
      for (int64_t e = key + 1; e <= E; ++e) starts[e] = S;
  }
}

__global__ void counts_kernel(const int64_t* starts, int64_t E, int64_t* counts) {
  MOELAB_GRID_STRIDE(e, E) counts[e] = starts[e + 1] - starts[e];
}

// Descending-priority sort key: larger priorities first; -0 equals +0; NaN sorts last. Ties keep slot
// order because the sort is stable.
template <typename P>
__device__ __forceinline__ uint64_t descending_key(P v) {
  if (v != v) return ~uint64_t(0);
  if (v == P(0)) v = P(0);
  if constexpr (sizeof(P) == 4) {
    uint32_t u = __float_as_uint(static_cast<float>(v));
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // unsigned order == float order
    return static_cast<uint64_t>(~u);
  } else {
    uint64_t u = static_cast<uint64_t>(__double_as_longlong(static_cast<double>(v)));
    u = (u & (uint64_t(1) << 63)) ? ~u : (u | (uint64_t(1) << 63));
    return ~u;
  }
}

template <typename P>
__global__ void priority_keys_kernel(const P* priority, int64_t S, uint64_t* keys, int64_t* slots) {
  MOELAB_GRID_STRIDE(s, S) {
    keys[s] = descending_key(priority[s]);
    slots[s] = s;
  }
}

// keys_out[q] = expert key of slots[q] (to re-sort priority-ordered slots by expert, stably).
__global__ void keys_of_slots_kernel(const uint64_t* expert_keys, const int64_t* slots, int64_t S,
                                     uint64_t* out) {
  MOELAB_GRID_STRIDE(q, S) out[q] = expert_keys[slots[q]];
}

// Slots sorted by expert (then by the rank order): the first `capacity` of each expert are kept.
// The final key is the expert for kept slots and E (last) for the rest.
__global__ void kept_keys_kernel(const uint64_t* sorted_keys, const int64_t* sorted_slots,
                                 const int64_t* starts, int64_t S, int64_t E, int64_t capacity,
                                 uint64_t* final_keys) {
  MOELAB_GRID_STRIDE(q, S) {
    int64_t e = static_cast<int64_t>(sorted_keys[q]);
    bool kept = e < E && q - starts[e] < capacity;
    final_keys[sorted_slots[q]] = static_cast<uint64_t>(kept ? e : E);
  }
}

// From the final order: rows are the first R = starts[E] sorted positions.
__global__ void rows_kernel(const int64_t* sorted_slots, const int64_t* starts, int64_t S, int64_t E,
                            int64_t* row_slot, int64_t* slot_row) {
  int64_t R = starts[E];
  MOELAB_GRID_STRIDE(p, S) {
    int64_t s = sorted_slots[p];
    row_slot[p] = p < R ? s : -1;
    slot_row[s] = p < R ? p : -1;
  }
}

// ---- row movement: one block per token, threads over the feature dim ----

// x (T, d) -> x_rows (R, d)
template <typename T>
__global__ void gather_rows_kernel(const T* x, const int64_t* slot_row, const int64_t* token_offsets,
                                   int64_t tokens, int64_t d, T* x_rows) {
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x)
    for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s) {
      int64_t r = slot_row[s];
      if (r < 0) continue;
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) x_rows[r * d + j] = x[t * d + j];
    }
}

// out[t] = sum over kept slots (slot order) of (weight ? weight[s] : 1) * rows[slot_row[s]]
template <typename T>
__global__ void sum_rows_kernel(const T* rows, const T* weight, const int64_t* slot_row,
                                const int64_t* token_offsets, int64_t tokens, int64_t d, T* out) {
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x)
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      double acc = 0;
      for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s) {
        int64_t r = slot_row[s];
        if (r < 0) continue;
        double v = static_cast<double>(rows[r * d + j]);
        acc += weight ? static_cast<double>(weight[s]) * v : v;
      }
      out[t * d + j] = static_cast<T>(acc);
    }
}

// gy_rows[slot_row[s]] = w[s] * gout[t]; gw[s] = <y_rows[slot_row[s]], gout[t]> (0 when dropped)
template <typename T>
__global__ void combine_backward_kernel(const T* y_rows, const T* weight, const int64_t* slot_row,
                                        const int64_t* token_offsets, const T* gout, int64_t tokens,
                                        int64_t d, T* gy_rows, T* gweight) {
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x)
    for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s) {
      int64_t r = slot_row[s];  // the same for every thread: the block stays together
      if (r < 0) {
        if (threadIdx.x == 0) gweight[s] = T(0);
        continue;
      }
      double w = static_cast<double>(weight[s]), dot = 0;
      for (int64_t j = threadIdx.x; j < d; j += kRowThreads) {
        double g = static_cast<double>(gout[t * d + j]);
        dot += static_cast<double>(y_rows[r * d + j]) * g;
        gy_rows[r * d + j] = static_cast<T>(w * g);
      }
      dot = block_sum(dot);
      if (threadIdx.x == 0) gweight[s] = static_cast<T>(dot);
    }
}

void check_i64(const Tensor& t, const char* kernel, const char* what) {
  MOELAB_CHECK(
      t.dtype() == DType::i64 && t.is_contiguous(),
      "cuda " << kernel << ": " << what << " must be a contiguous i64 tensor, got " << dtype_name(t.dtype()));
}

}  // namespace

void CudaBackend::moe_plan(const Tensor& slot_expert, const Tensor& slot_priority, int64_t E,
                           int64_t capacity, Tensor& expert_counts, Tensor& expert_offsets, Tensor& row_slot,
                           Tensor& slot_row) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&slot_expert, &expert_counts, &expert_offsets,
                                                              &row_slot, &slot_row})
    check_i64(*t, "moe_plan", "index tensors");
  int64_t S = slot_expert.numel();
  int dev = device_of(slot_expert);
  cudaStream_t st = stream_for(slot_expert);
  int64_t* starts_out = expert_offsets.data<int64_t>();
  if (S == 0) {
    MOELAB_CUDA_CHECK(cudaMemsetAsync(expert_counts.raw_data(), 0, size_t(E) * sizeof(int64_t), st));
    MOELAB_CUDA_CHECK(cudaMemsetAsync(starts_out, 0, size_t(E + 1) * sizeof(int64_t), st));
    return;
  }
  // Buffers: expert keys of each slot, two key/value pairs for the sorts, and the primary segment starts.
  Scratch expert_key(size_t(S) * sizeof(uint64_t), dev), keys(size_t(S) * 2 * sizeof(uint64_t), dev),
      vals(size_t(S) * 2 * sizeof(int64_t), dev), starts(size_t(E + 1) * sizeof(int64_t), dev);
  uint64_t *ek = expert_key.as<uint64_t>(), *k_in = keys.as<uint64_t>(), *k_out = k_in + S;
  int64_t *v_in = vals.as<int64_t>(), *v_out = v_in + S, *st1 = starts.as<int64_t>();
  unsigned grid = grid_for(S, dev);
  int expert_bits = key_bits_for(uint64_t(E));

  IndexFault fault(dev);
  expert_keys_kernel<<<grid, kThreads, 0, st>>>(slot_expert.data<int64_t>(), S, E, ek, v_in, fault.slot());
  MOELAB_CUDA_CHECK_LAUNCH();
  int64_t bad = fault.first_bad();  // the one host wait of the plan
  MOELAB_CHECK(bad < 0, "moe_plan: slot " << bad << " names expert "
                                          << read_index_at(slot_expert, bad < 0 ? 0 : bad) << " of " << E);

  // Primary order: by expert, slot order inside each expert.
  sort_pairs(ek, k_out, v_in, v_out, S, expert_bits, dev);
  segment_starts_kernel<<<grid, kThreads, 0, st>>>(k_out, S, E, st1);
  MOELAB_CUDA_CHECK_LAUNCH();
  if (E > 0) {
    counts_kernel<<<grid_for(E, dev), kThreads, 0, st>>>(st1, E, expert_counts.data<int64_t>());
    MOELAB_CUDA_CHECK_LAUNCH();
  }
  if (capacity >= 0) {
    if (slot_priority.defined()) {
      // Rank order inside each expert: priority descending (ties: lower slot), by two stable sorts.
      MOELAB_CHECK(
          slot_priority.numel() == S && slot_priority.is_contiguous() &&
              slot_priority.device() == slot_expert.device(),
          "cuda moe_plan: slot_priority must be a contiguous (S) tensor on " << slot_expert.device().str());
      for_float_dtype(slot_priority.dtype(), "moe_plan", [&]<typename P>() {
        priority_keys_kernel<P><<<grid, kThreads, 0, st>>>(slot_priority.data<P>(), S, k_in, v_in);
      });
      MOELAB_CUDA_CHECK_LAUNCH();
      sort_pairs(k_in, k_out, v_in, v_out, S, 64, dev);  // v_out: slots by priority
      keys_of_slots_kernel<<<grid, kThreads, 0, st>>>(ek, v_out, S, k_in);
      MOELAB_CUDA_CHECK_LAUNCH();
      sort_pairs(k_in, k_out, v_out, v_in, S, expert_bits, dev);  // (k_out, v_in): by expert, then priority
      kept_keys_kernel<<<grid, kThreads, 0, st>>>(k_out, v_in, st1, S, E, capacity, k_in);
    } else {
      kept_keys_kernel<<<grid, kThreads, 0, st>>>(k_out, v_out, st1, S, E, capacity, k_in);
    }
    MOELAB_CUDA_CHECK_LAUNCH();
    // Final order: kept slots by expert in slot order, then everything else.
    iota(v_in, S, dev);
    sort_pairs(k_in, k_out, v_in, v_out, S, expert_bits, dev);
    segment_starts_kernel<<<grid, kThreads, 0, st>>>(k_out, S, E, starts_out);
  } else {
    MOELAB_CUDA_CHECK(
        cudaMemcpyAsync(starts_out, st1, size_t(E + 1) * sizeof(int64_t), cudaMemcpyDeviceToDevice, st));
  }
  MOELAB_CUDA_CHECK_LAUNCH();
  rows_kernel<<<grid, kThreads, 0, st>>>(v_out, starts_out, S, E, row_slot.data<int64_t>(),
                                         slot_row.data<int64_t>());
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::moe_gather_rows(const Tensor& x, const Tensor& slot_row, const Tensor& token_offsets,
                                  Tensor& x_rows) {
  int64_t T = x.size(0), d = x.size(1);
  if (T == 0 || d == 0 || x_rows.numel() == 0) return;
  check_i64(slot_row, "moe_gather_rows", "slot_row");
  check_i64(token_offsets, "moe_gather_rows", "token_offsets");
  cudaStream_t st = stream_for(x);
  dispatch_dtype(x.dtype(), [&]<typename T_>() {
    gather_rows_kernel<T_><<<row_grid(T), kRowThreads, 0, st>>>(
        x.data<T_>(), slot_row.data<int64_t>(), token_offsets.data<int64_t>(), T, d, x_rows.data<T_>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::moe_scatter_rows(const Tensor& g_rows, const Tensor& slot_row, const Tensor& token_offsets,
                                   Tensor& gx) {
  int64_t T = gx.size(0), d = gx.size(1);
  if (T == 0 || d == 0) return;
  check_i64(slot_row, "moe_scatter_rows", "slot_row");
  check_i64(token_offsets, "moe_scatter_rows", "token_offsets");
  cudaStream_t st = stream_for(gx);
  dispatch_dtype(gx.dtype(), [&]<typename T_>() {
    sum_rows_kernel<T_>
        <<<row_grid(T), kRowThreads, 0, st>>>(g_rows.data<T_>(), nullptr, slot_row.data<int64_t>(),
                                              token_offsets.data<int64_t>(), T, d, gx.data<T_>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::moe_combine(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                              const Tensor& token_offsets, Tensor& out) {
  int64_t T = out.size(0), d = out.size(1);
  if (T == 0 || d == 0) return;
  check_i64(slot_row, "moe_combine", "slot_row");
  check_i64(token_offsets, "moe_combine", "token_offsets");
  cudaStream_t st = stream_for(out);
  for_float_dtype(out.dtype(), "moe_combine", [&]<typename T_>() {
    sum_rows_kernel<T_><<<row_grid(T), kRowThreads, 0, st>>>(
        y_rows.data<T_>(), slot_weight.data<T_>(), slot_row.data<int64_t>(), token_offsets.data<int64_t>(), T,
        d, out.data<T_>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::moe_combine_backward(const Tensor& y_rows, const Tensor& slot_weight,
                                       const Tensor& slot_row, const Tensor& token_offsets,
                                       const Tensor& gout, Tensor& gy_rows, Tensor& gslot_weight) {
  int64_t T = gout.size(0), d = gout.size(1);
  if (T == 0) return;
  check_i64(slot_row, "moe_combine_backward", "slot_row");
  check_i64(token_offsets, "moe_combine_backward", "token_offsets");
  cudaStream_t st = stream_for(gout);
  for_float_dtype(gout.dtype(), "moe_combine_backward", [&]<typename T_>() {
    combine_backward_kernel<T_><<<row_grid(T), kRowThreads, 0, st>>>(
        y_rows.data<T_>(), slot_weight.data<T_>(), slot_row.data<int64_t>(), token_offsets.data<int64_t>(),
        gout.data<T_>(), T, d, gy_rows.data<T_>(), gslot_weight.data<T_>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
