// Expert parallelism: count exchange, all-to-all of rows to their experts' ranks, local grouped FFN, reverse.
#include "core/moe/expert_parallel.h"

#include <atomic>

#include "core/autograd/autograd.h"
#include "core/dist/dist_ops.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {
std::atomic<int64_t> g_bytes_sent{0};

Tensor index_tensor(const std::vector<int64_t>& v, Device device) {
  return Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}, device);
}
// Experts [first, first + count) of a stacked (E, ...) weight, as a differentiable contiguous tensor.
Tensor experts_slice(const Tensor& w, int64_t first, int64_t count) {
  return w.defined() ? contiguous(slice(w, 0, first, first + count)) : Tensor();
}
}  // namespace

int64_t expert_parallel_bytes_sent() { return g_bytes_sent.load(); }
void reset_expert_parallel_bytes() { g_bytes_sent = 0; }

int64_t local_expert_first(int64_t num_experts, int ranks, int member) { return num_experts / ranks * member; }

Tensor expert_parallel_dispatch_combine(const LayerParallelism& p, const Tensor& x, const Tensor& slot_weight,
                                        const DispatchPlan& plan, const ExpertWeights& experts) {
  MOELAB_CHECK(p.comm && p.expert_ranks >= 1, "expert_parallel_dispatch_combine: no expert-parallel group");
  dist::Communicator& comm = *p.comm;
  const int N = comm.size(), P = p.expert_ranks, me = comm.rank() - p.expert_first_rank;
  const int64_t E = plan.num_experts, L = E / P, T = plan.num_tokens, R = plan.num_rows;
  MOELAB_CHECK(E % P == 0, "expert parallel: " << E << " experts cannot be shared by " << P << " ranks");
  MOELAB_CHECK(me >= 0 && me < P && p.expert_first_rank + P <= N,
               "expert parallel: rank " << comm.rank() << " is outside its group [" << p.expert_first_rank << ", "
                                        << p.expert_first_rank + P << ") of " << N << " ranks");
  const Device dev = x.device();

  // This rank's kept rows, grouped by expert (the plan's order): their tokens and combine weights.
  const std::vector<int64_t> row_slot_all = plan.row_slot.to_vector<int64_t>();
  const std::vector<int64_t> token_offsets = plan.token_offsets.to_vector<int64_t>();
  const std::vector<int64_t> expert_offsets = plan.expert_offsets.to_vector<int64_t>();
  std::vector<int64_t> slot_token(static_cast<size_t>(plan.num_slots));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = token_offsets[t]; s < token_offsets[t + 1]; ++s) slot_token[s] = t;
  std::vector<int64_t> row_slot(row_slot_all.begin(), row_slot_all.begin() + R), row_token(static_cast<size_t>(R));
  for (int64_t i = 0; i < R; ++i) row_token[i] = slot_token[row_slot[i]];

  // The count exchange: every rank's kept rows per expert (rank-major, E each).
  std::vector<int64_t> kept(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) kept[e] = expert_offsets[e + 1] - expert_offsets[e];
  const std::vector<int64_t> all_kept = comm.all_gather(kept);
  auto kept_of = [&](int member, int64_t e) { return all_kept[static_cast<size_t>((p.expert_first_rank + member) * E + e)]; };
  std::vector<int64_t> send_rows(static_cast<size_t>(N), 0), recv_rows(static_cast<size_t>(N), 0);
  for (int q = 0; q < P; ++q)
    for (int64_t j = 0; j < L; ++j) {
      send_rows[p.expert_first_rank + q] += kept[q * L + j];
      recv_rows[p.expert_first_rank + q] += kept_of(q, me * L + j);
    }

  int64_t off_rank_rows = 0;  // rows leaving this rank: dispatched ones, and the outputs combined back
  for (int q = 0; q < N; ++q)
    if (q != comm.rank()) off_rank_rows += send_rows[q] + recv_rows[q];
  const bool records = grad_enabled() && (x.requires_grad() || experts.w1.requires_grad());
  g_bytes_sent += off_rank_rows * x.size(1) * static_cast<int64_t>(dtype_size(x.dtype())) * (records ? 2 : 1);

  // Dispatch: rows to the ranks of their experts (the plan's expert order is already rank order).
  Tensor x_rows = index_select(x, index_tensor(row_token, dev));
  Tensor x_recv = dist::all_to_all_v(comm, x_rows, send_rows, recv_rows);

  // Received blocks come per source rank, each grouped by local expert: regroup expert-major for the FFN.
  std::vector<int64_t> perm, local_offsets{0};
  std::vector<int64_t> block_start(static_cast<size_t>(P), 0);
  for (int q = 1; q < P; ++q) block_start[q] = block_start[q - 1] + recv_rows[p.expert_first_rank + q - 1];
  for (int64_t j = 0; j < L; ++j) {
    for (int q = 0; q < P; ++q) {
      int64_t within = 0;
      for (int64_t i = 0; i < j; ++i) within += kept_of(q, me * L + i);
      for (int64_t r = 0; r < kept_of(q, me * L + j); ++r) perm.push_back(block_start[q] + within + r);
    }
    local_offsets.push_back(static_cast<int64_t>(perm.size()));
  }
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
  const int64_t first = me * L;
  ExpertWeights local{experts_slice(experts.w1, first, L), experts_slice(experts.b1, first, L),
                      experts_slice(experts.w2, first, L), experts_slice(experts.b2, first, L),
                      experts_slice(experts.w3, first, L), experts.act};
  Tensor y_local = grouped_expert_ffn(index_select(x_recv, index_tensor(perm, dev)), local_offsets, local);
  Tensor y_recv = index_select(y_local, index_tensor(inverse, dev));

  // Combine: the reverse all-to-all brings each row's output home; weighted sum per token.
  Tensor y_rows = dist::all_to_all_v(comm, y_recv, recv_rows, send_rows);
  Tensor w_rows = index_select(slot_weight.reshape(Shape{plan.num_slots}), index_tensor(row_slot, dev)).reshape(Shape{R, 1});
  return index_add(y_rows * w_rows, index_tensor(row_token, dev), T);
}

}  // namespace moelab::moe
