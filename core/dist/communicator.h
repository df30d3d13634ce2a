#pragma once
// A communicator: the ranks of one job and the collectives between them (docs/distributed.md).
// Implementations: one process (local), MPI (host memory) and NCCL (CUDA memory, when built with both).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::dist {

// Every collective must be called by every rank of the communicator, in the same order, with agreeing
// arguments (the same dtype; shapes as each call says). Tensors may have any strides; a tensor on another
// device than the communicator's is staged through it (copied there and back). Errors throw moelab::Error.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "local", "mpi", "nccl"
  // Where the buffers handed to the raw primitives live (cpu for local and MPI, cuda:N for NCCL).
  virtual Device device() const = 0;

  // ---- tensors (f32, f64, i32, i64) ----
  // Sum over ranks, written into x on every rank. Deterministic: element i is summed in rank order,
  // ((x_0 + x_1) + x_2) + ..., so every rank gets bitwise the same result, run after run, and it equals
  // the serial sum of the ranks' tensors in that order. Done as a reduce-scatter (an all-to-all of
  // 1/size chunks, each chunk summed in rank order) then an all-gather: 2 (size-1)/size of x sent per rank.
  void all_reduce_sum(Tensor& x);
  // Rank r's rows chunk_rows[r] of the rank-order sum of x over ranks: x (sum(chunk_rows), ...) on every
  // rank -> (chunk_rows[rank], ...). Summed exactly as all_reduce_sum sums.
  Tensor reduce_scatter_sum(const Tensor& x, const std::vector<int64_t>& chunk_rows);
  // Concatenation along dim 0 of every rank's x, in rank order: x (n_r, ...) -> (sum_r n_r, ...).
  // Trailing dims must agree; n_r may differ per rank (when rows_per_rank is given it receives n_r).
  Tensor all_gather(const Tensor& x, std::vector<int64_t>* rows_per_rank = nullptr);
  // Root's x copied into x on every rank (same shape and dtype everywhere).
  void broadcast(Tensor& x, int root);
  // The count exchange: send[p] goes to rank p; returns recv with recv[p] = what rank p sent to this rank.
  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send);
  // Variable all-to-all along dim 0: x holds send_rows[0] rows for rank 0, then send_rows[1] for rank 1,
  // ...; the result holds the rows received from rank 0, then from rank 1, ...; recv_rows must be
  // exchange_counts(send_rows) (done once by the caller, reused for the reverse all-to-all).
  // x (sum(send_rows), ...) -> (sum(recv_rows), ...); trailing dims must agree across ranks.
  Tensor all_to_all_v(const Tensor& x, const std::vector<int64_t>& send_rows,
                      const std::vector<int64_t>& recv_rows);
  virtual void barrier() = 0;

  // ---- plain vectors (host memory, any communicator) ----
  template <typename T> void all_reduce_sum(std::vector<T>& v);
  template <typename T> std::vector<T> all_gather(const std::vector<T>& v);  // sizes may differ per rank
  template <typename T> void broadcast(std::vector<T>& v, int root);        // v sized alike on every rank

  // Stops every rank of the job: prints "moelab: rank R of N failed: MESSAGE" to stderr and ends the
  // job with a non-zero exit (MPI_Abort); a single process exits with status 1.
  [[noreturn]] virtual void abort(const std::string& message) = 0;

  // ---- raw primitives (contiguous buffers on device(); counts and offsets in elements) ----
  // Sends counts_send[p] elements from send + offsets_send[p] to rank p; receives counts_recv[p] from rank
  // p into recv + offsets_recv[p].
  virtual void all_to_all_v_raw(const void* send, const std::vector<int64_t>& counts_send,
                                const std::vector<int64_t>& offsets_send, void* recv,
                                const std::vector<int64_t>& counts_recv, const std::vector<int64_t>& offsets_recv,
                                DType dtype) = 0;
  // Rank p's `count` elements (counts[p] on every rank) land at recv + offsets[p] on every rank.
  virtual void all_gather_v_raw(const void* send, int64_t count, void* recv, const std::vector<int64_t>& counts,
                                const std::vector<int64_t>& offsets, DType dtype) = 0;
  virtual void broadcast_raw(void* buffer, int64_t count, DType dtype, int root) = 0;
  // Exchanges one int64 per peer (host memory, whatever device()): recv[p] = rank p's send[this rank].
  virtual std::vector<int64_t> exchange_counts_raw(const std::vector<int64_t>& send) = 0;

 protected:
  // Places for messages: "all_reduce_sum on rank 1 of 2".
  std::string where(const char* op) const;
};

// The job's communicator, created on first use: MPI when launched by mpirun (OMPI_COMM_WORLD_SIZE is set)
// and MPI was built in, else one process. Launched by mpirun with more than one rank but built without MPI
// throws (every rank would otherwise run the whole job alone).
Communicator& world();
// True once world() was created with more than one rank (used to decide whether a failure aborts the job).
bool world_is_distributed();
// A communicator for tensors on `device`: world() for cpu; for cuda an NCCL communicator over the same
// ranks (bootstrapped through world(), created once per device) when NCCL was built in, else world()
// staging through host memory.
Communicator& communicator_for(Device device);
// True when this build has the MPI / NCCL implementations.
bool mpi_built();
bool nccl_built();

// Implementations (each in its own file).
std::unique_ptr<Communicator> make_local_communicator();
std::unique_ptr<Communicator> make_mpi_communicator();  // throws when built without MPI
// Ranks and size of `bootstrap`, one CUDA device per rank; throws when built without NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int cuda_device);
// What the CUDA library registers when it was built with NCCL.
using NcclFactory = std::unique_ptr<Communicator> (*)(Communicator& bootstrap, int cuda_device);
bool register_nccl_factory(NcclFactory factory);

// Runs fn; an exception escaping it on any rank of a multi-rank world stops the whole job through
// world().abort(what()). In a single process the exception propagates unchanged.
template <typename F> void run_or_abort(F&& fn);
[[noreturn]] void abort_job(const std::string& message);

// ---- template definitions ----
template <typename T> void Communicator::all_reduce_sum(std::vector<T>& v) {
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  all_reduce_sum(t);
  v = t.to_vector<T>();
}
template <typename T> std::vector<T> Communicator::all_gather(const std::vector<T>& v) {
  return all_gather(Tensor::from_vector(v, {static_cast<int64_t>(v.size())})).template to_vector<T>();
}
template <typename T> void Communicator::broadcast(std::vector<T>& v, int root) {
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  broadcast(t, root);
  v = t.to_vector<T>();
}
template <typename F> void run_or_abort(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (!world_is_distributed()) throw;
    abort_job(e.what());
  }
}

}  // namespace moelab::dist
