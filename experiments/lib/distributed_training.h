#pragma once
// The Trainer's side of a run launched by mpirun (docs/distributed.md, Training on several ranks): which
// micro-batches this rank trains, the gradient all-reduce and the exchange of every micro-batch's results
// after backward, the expert-parallel groups, and the agreement of all ranks on paths and flags.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/dist/communicator.h"
#include "experiments/lib/micro_batches.h"

namespace moelab::experiments {

// Adds dist.expert_parallel and dist.bucket_mb (called by declare_common_config).
void declare_distributed_config(Schema& schema);

// Rank 0's path on every rank of dist::world() (default run directories carry the time of day).
std::filesystem::path agree_on_path(const std::filesystem::path& path);

class DistributedTraining {
 public:
  // The job's ranks (dist::world(); one process without mpirun). ConfigError when train.grad_accum is not a
  // multiple of the ranks, or dist.expert_parallel does not divide them.
  DistributedTraining(const Config& cfg, Device device);

  bool active() const { return size_ > 1; }
  bool is_root() const { return rank_ == 0; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int expert_parallel() const { return expert_parallel_; }
  dist::Communicator& comm() const { return *comm_; }

  // Micro-batch `micro` of every step is trained by rank micro % size (all ranks draw every batch, so the
  // data streams stay identical).
  bool trains_micro(int micro) const { return micro % size_ == rank_; }

  // Gives every MoE layer of `model` its expert-parallel group (ranks [g P, (g+1) P) for P =
  // dist.expert_parallel) and the communicator for global balancing counts. ConfigError when P does not
  // divide a layer's experts, its router mixes tokens, or train.workers > 1 would call collectives from
  // several threads.
  void attach_moe_layers(nn::Module& model, const Config& cfg) const;

  // Rank 0's parameters and buffers to every rank.
  void broadcast_model(nn::Module& model) const;

  // After this rank's backwards of one step: gradients summed over ranks (in buckets, rank order), and every
  // micro-batch's loss, aux values, metrics and routing copied to every rank (so `micro` ends up as a single
  // process would have it). Returns the bytes this rank handed to all-reduce.
  // Tests make one rank fail before the all-reduce of a step: MOELAB_TEST_FAIL_RANK=RANK:STEP (1-based step).
  int64_t finish_backward(std::vector<MicroBatchOutcome>& micro, const std::vector<Tensor>& params, int64_t step) const;

  // True on every rank when `flag` is true on any rank (an interrupt seen by one rank stops all at one step).
  bool any(bool flag) const;
  void barrier() const;

 private:
  dist::Communicator* comm_ = nullptr;
  int rank_ = 0, size_ = 1, expert_parallel_ = 1;
  int64_t bucket_bytes_ = int64_t(25) << 20;
  int fail_rank_ = -1;
  int64_t fail_step_ = -1;
};

}  // namespace moelab::experiments
