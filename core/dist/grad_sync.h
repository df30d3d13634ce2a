#pragma once
// Data-parallel plumbing for a trainer: the same initial parameters on every rank, and gradients summed
// over ranks in buckets after backward (so every rank's optimizer takes the identical step).
#include <cstdint>
#include <vector>

#include "core/dist/communicator.h"
#include "core/tensor/tensor.h"

namespace moelab::dist {

// Copies root's value of every parameter to all ranks (in place, in the order given).
void broadcast_parameters(Communicator& comm, const std::vector<Tensor>& params, int root = 0);

// grad_p <- scale * sum over ranks of grad_p, for every parameter, in place. Consecutive parameters of
// one dtype and device are packed into flat buckets of up to bucket_bytes, one all_reduce_sum each (a
// parameter larger than a bucket goes alone). A parameter without a gradient on this rank counts as zeros
// (and gets one), so every rank packs identical buckets. params must be listed alike on every rank.
// Returns the bytes this rank handed to all-reduce (the sum of bucket sizes).
// With per-rank losses that are means over B/N samples, scale = 1/N gives the gradient of the mean over B.
int64_t all_reduce_gradients(Communicator& comm, const std::vector<Tensor>& params, double scale = 1.0,
                             int64_t bucket_bytes = int64_t(25) << 20);

}  // namespace moelab::dist
