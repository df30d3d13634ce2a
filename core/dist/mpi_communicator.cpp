// The MPI communicator (host memory): a duplicate of MPI_COMM_WORLD whose errors return codes, turned
// into moelab::Error naming the call, the rank and MPI's text. Compiled only with MOELAB_MPI.
#define OMPI_SKIP_MPICXX 1  // the C API only
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/dist/communicator.h"
#include "core/util/check.h"

namespace moelab::dist {
namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
  }
  return MPI_BYTE;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;  // OpenMP threads never call MPI: only the main thread does
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_mpi_ = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  void barrier() override { check(MPI_Barrier(comm_), "barrier", "MPI_Barrier"); }

  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "moelab: rank %d of %d failed: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 1);  // mpirun ends every rank and exits non-zero
    std::_Exit(1);
  }

  // Point-to-point with every peer (receives posted first), the own part copied locally.
  void all_to_all_v_raw(const void* send, const std::vector<int64_t>& counts_send,
                        const std::vector<int64_t>& offsets_send, void* recv, const std::vector<int64_t>& counts_recv,
                        const std::vector<int64_t>& offsets_recv, DType dtype) override {
    const size_t e = dtype_size(dtype);
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    std::vector<MPI_Request> requests;
    requests.reserve(2 * size_);
    for (int p = 0; p < size_; ++p) {
      if (p == rank_ || counts_recv[p] == 0) continue;
      requests.emplace_back();
      check(MPI_Irecv(r + offsets_recv[p] * e, int_count(counts_recv[p], "all_to_all_v"), mpi_type(dtype), p,
                      kTag, comm_, &requests.back()),
            "all_to_all_v", "MPI_Irecv");
    }
    for (int p = 0; p < size_; ++p) {
      if (p == rank_ || counts_send[p] == 0) continue;
      requests.emplace_back();
      check(MPI_Isend(s + offsets_send[p] * e, int_count(counts_send[p], "all_to_all_v"), mpi_type(dtype), p, kTag,
                      comm_, &requests.back()),
            "all_to_all_v", "MPI_Isend");
    }
    MOELAB_CHECK(counts_send[rank_] == counts_recv[rank_], where("all_to_all_v") << ": sends " << counts_send[rank_]
                                                                                 << " elements to itself but expects "
                                                                                 << counts_recv[rank_]);
    if (counts_send[rank_] > 0)
      std::memcpy(r + offsets_recv[rank_] * e, s + offsets_send[rank_] * e, counts_send[rank_] * e);
    check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "all_to_all_v",
          "MPI_Waitall");
  }

  void all_gather_v_raw(const void* send, int64_t count, void* recv, const std::vector<int64_t>& counts,
                        const std::vector<int64_t>& offsets, DType dtype) override {
    std::vector<int> c(size_), o(size_);
    for (int p = 0; p < size_; ++p) {
      c[p] = int_count(counts[p], "all_gather");
      o[p] = int_count(offsets[p], "all_gather");
    }
    check(MPI_Allgatherv(send, int_count(count, "all_gather"), mpi_type(dtype), recv, c.data(), o.data(),
                         mpi_type(dtype), comm_),
          "all_gather", "MPI_Allgatherv");
  }

  void broadcast_raw(void* buffer, int64_t count, DType dtype, int root) override {
    check(MPI_Bcast(buffer, int_count(count, "broadcast"), mpi_type(dtype), root, comm_), "broadcast", "MPI_Bcast");
  }

  std::vector<int64_t> exchange_counts_raw(const std::vector<int64_t>& send) override {
    std::vector<int64_t> recv(size_);
    check(MPI_Alltoall(send.data(), 1, MPI_INT64_T, recv.data(), 1, MPI_INT64_T, comm_), "exchange_counts",
          "MPI_Alltoall");
    return recv;
  }

 private:
  static constexpr int kTag = 19;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;

  void check(int err, const char* op, const char* call) const {
    if (err == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, text, &len);
    MOELAB_FAIL(where(op) << ": " << call << " failed: " << std::string(text, len));
  }
  // MPI counts and displacements are int.
  int int_count(int64_t n, const char* op) const {
    MOELAB_CHECK(n >= 0 && n <= INT_MAX, where(op) << ": " << n << " elements exceed MPI's int count; split the "
                                                                   "buffer into parts below 2^31 elements");
    return static_cast<int>(n);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace moelab::dist
