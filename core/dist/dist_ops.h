#pragma once
// Collectives as differentiable ops for model code. Every rank must record the same ops in the same
// order and depend on every output, else some rank waits forever (docs/distributed.md, Collectives as ops).
#include <cstdint>
#include <vector>

#include "core/dist/communicator.h"
#include "core/tensor/tensor.h"

namespace moelab::dist {

// What the global loss is, for ops whose output is the same on every rank.
//   sum_of_ranks: L = sum over ranks of each rank's own loss L_r(y) (each rank's y feeds different work,
//     e.g. a different batch shard). Then dL/dx_r sums every rank's dL_s/dy: the backward communicates.
//   replicated: every rank computes the same L from y and it counts once (the ranks duplicate the work
//     after the collective). Then dL/dx_r is rank r's own dL/dy (its own rows for all_gather): no
//     communication in backward.
enum class GradOfReplicated : uint8_t { sum_of_ranks, replicated };

// y = sum over ranks of x (rank order, bitwise the same everywhere). x: (...) -> (...).
// Backward: sum_of_ranks -> all_reduce_sum of the gradient; replicated -> the gradient itself.
Tensor all_reduce_sum(Communicator& comm, const Tensor& x,
                      GradOfReplicated grad = GradOfReplicated::sum_of_ranks);

// y = every rank's x concatenated along dim 0 in rank order. x: (n_r, ...) -> (sum_r n_r, ...).
// Backward: sum_of_ranks -> reduce-scatter of the gradient (rank r gets its rows of the rank-order sum);
// replicated -> rank r's own rows of its gradient.
Tensor all_gather(Communicator& comm, const Tensor& x, GradOfReplicated grad = GradOfReplicated::sum_of_ranks);

// Variable all-to-all along dim 0 (Communicator::all_to_all_v); recv_rows = comm.exchange_counts(send_rows).
// x: (sum(send_rows), ...) -> (sum(recv_rows), ...). Backward: the reverse all-to-all of the gradient
// (send recv_rows, receive send_rows): each row's gradient returns to the rank and position it came from.
Tensor all_to_all_v(Communicator& comm, const Tensor& x, const std::vector<int64_t>& send_rows,
                    const std::vector<int64_t>& recv_rows);

}  // namespace moelab::dist
