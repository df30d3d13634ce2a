// The one-process communicator: rank 0 of 1; every collective is a copy (or nothing).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/dist/communicator.h"
#include "core/util/check.h"

namespace moelab::dist {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }
  Device device() const override { return Device::cpu(); }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "moelab: rank 0 of 1 failed: %s\n", message.c_str());
    std::fflush(stderr);
    std::exit(1);
  }

  void all_to_all_v_raw(const void* send, const std::vector<int64_t>& counts_send,
                        const std::vector<int64_t>& offsets_send, void* recv, const std::vector<int64_t>& counts_recv,
                        const std::vector<int64_t>& offsets_recv, DType dtype) override {
    MOELAB_CHECK(counts_send.at(0) == counts_recv.at(0), where("all_to_all_v") << ": sends " << counts_send[0]
                                                                               << " elements to itself but expects "
                                                                               << counts_recv[0]);
    copy(send, offsets_send[0], recv, offsets_recv[0], counts_send[0], dtype);
  }
  void all_gather_v_raw(const void* send, int64_t count, void* recv, const std::vector<int64_t>& counts,
                        const std::vector<int64_t>& offsets, DType dtype) override {
    copy(send, 0, recv, offsets.at(0), count, dtype);
  }
  void broadcast_raw(void*, int64_t, DType, int) override {}
  std::vector<int64_t> exchange_counts_raw(const std::vector<int64_t>& send) override { return send; }

 private:
  static void copy(const void* src, int64_t src_off, void* dst, int64_t dst_off, int64_t n, DType dtype) {
    const size_t e = dtype_size(dtype);
    if (n > 0 && (static_cast<const char*>(src) + src_off * e) != (static_cast<char*>(dst) + dst_off * e))
      std::memmove(static_cast<char*>(dst) + dst_off * e, static_cast<const char*>(src) + src_off * e, n * e);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace moelab::dist
