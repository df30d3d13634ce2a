// The NCCL communicator (CUDA memory, one device per rank): NCCL calls run on the device's moelab stream,
// so they are ordered with every kernel around them. The unique id travels through a bootstrap
// communicator (MPI), which also carries the host-side count exchange. Compiled only with CUDA and NCCL.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/backend/cuda/cuda_util.h"
#include "core/dist/communicator.h"
#include "core/util/check.h"

namespace moelab::dist {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
  }
  return ncclChar;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int cuda_device) : bootstrap_(bootstrap), device_(cuda_device) {
    MOELAB_CHECK(bootstrap.device().is_cpu(), "the NCCL bootstrap must be a host communicator, got "
                                                  << bootstrap.name());
    MOELAB_CHECK(cuda_device >= 0 && cuda_device < cuda::device_count(),
                 "NCCL communicator for cuda:" << cuda_device << " but " << cuda::device_count()
                                               << " CUDA devices are visible on rank " << bootstrap.rank());
    ncclUniqueId id{};
    if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "init", "ncclGetUniqueId");
    std::vector<int64_t> bytes((sizeof(id) + 7) / 8, 0);
    std::memcpy(bytes.data(), &id, sizeof(id));
    bootstrap.broadcast(bytes, 0);
    std::memcpy(&id, bytes.data(), sizeof(id));
    (void)cuda::stream(device_);  // makes the device current (and creates its stream)
    check(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()), "init", "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  std::string name() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }

  void barrier() override {
    MOELAB_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(device_)));
    bootstrap_.barrier();
  }
  [[noreturn]] void abort(const std::string& message) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    bootstrap_.abort(message);
    std::_Exit(1);  // not reached: the bootstrap's abort ends the process
  }

  // Grouped send/recv with every peer; the own part is a device copy on the same stream.
  void all_to_all_v_raw(const void* send, const std::vector<int64_t>& counts_send,
                        const std::vector<int64_t>& offsets_send, void* recv, const std::vector<int64_t>& counts_recv,
                        const std::vector<int64_t>& offsets_recv, DType dtype) override {
    const size_t e = dtype_size(dtype);
    const auto* s = static_cast<const char*>(send);
    auto* r = static_cast<char*>(recv);
    const int me = rank();
    MOELAB_CHECK(counts_send[me] == counts_recv[me], where("all_to_all_v") << ": sends " << counts_send[me]
                                                                           << " elements to itself but expects "
                                                                           << counts_recv[me]);
    cudaStream_t st = cuda::stream(device_);
    check(ncclGroupStart(), "all_to_all_v", "ncclGroupStart");
    for (int p = 0; p < size(); ++p) {
      if (p == me) continue;
      if (counts_send[p] > 0)
        check(ncclSend(s + offsets_send[p] * e, counts_send[p], nccl_type(dtype), p, comm_, st), "all_to_all_v",
              "ncclSend");
      if (counts_recv[p] > 0)
        check(ncclRecv(r + offsets_recv[p] * e, counts_recv[p], nccl_type(dtype), p, comm_, st), "all_to_all_v",
              "ncclRecv");
    }
    check(ncclGroupEnd(), "all_to_all_v", "ncclGroupEnd");
    if (counts_send[me] > 0)
      MOELAB_CUDA_CHECK(cudaMemcpyAsync(r + offsets_recv[me] * e, s + offsets_send[me] * e, counts_send[me] * e,
                                        cudaMemcpyDeviceToDevice, st));
  }

  // Variable counts: one broadcast per root, grouped (NCCL's all-gather needs equal counts).
  void all_gather_v_raw(const void* send, int64_t count, void* recv, const std::vector<int64_t>& counts,
                        const std::vector<int64_t>& offsets, DType dtype) override {
    const size_t e = dtype_size(dtype);
    auto* r = static_cast<char*>(recv);
    cudaStream_t st = cuda::stream(device_);
    check(ncclGroupStart(), "all_gather", "ncclGroupStart");
    for (int p = 0; p < size(); ++p) {
      if (counts[p] == 0) continue;
      const void* src = p == rank() ? send : r + offsets[p] * e;
      check(ncclBroadcast(src, r + offsets[p] * e, counts[p], nccl_type(dtype), p, comm_, st), "all_gather",
            "ncclBroadcast");
    }
    check(ncclGroupEnd(), "all_gather", "ncclGroupEnd");
    (void)count;
  }

  void broadcast_raw(void* buffer, int64_t count, DType dtype, int root) override {
    check(ncclBroadcast(buffer, buffer, count, nccl_type(dtype), root, comm_, cuda::stream(device_)), "broadcast",
          "ncclBroadcast");
  }

  std::vector<int64_t> exchange_counts_raw(const std::vector<int64_t>& send) override {
    return bootstrap_.exchange_counts_raw(send);
  }

 private:
  Communicator& bootstrap_;
  int device_;
  ncclComm_t comm_ = nullptr;

  void check(ncclResult_t r, const char* op, const char* call) const {
    if (r == ncclSuccess) return;
    MOELAB_FAIL(where(op) << ": " << call << " failed: " << ncclGetErrorString(r));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_nccl(Communicator& bootstrap, int cuda_device) {
  return std::make_unique<NcclCommunicator>(bootstrap, cuda_device);
}

namespace {
// Registered at static initialization: the CUDA library is whole-archived into programs.
const bool registered = register_nccl_factory(&make_nccl);
}  // namespace

}  // namespace moelab::dist
