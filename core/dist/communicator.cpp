// The tensor collectives of Communicator, built on each implementation's raw primitives, and the
// process-wide world communicator.
#include "core/dist/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "core/util/check.h"

namespace moelab::dist {
namespace {

int64_t total(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}
std::vector<int64_t> prefix_offsets(const std::vector<int64_t>& counts) {
  std::vector<int64_t> off(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); ++i) off[i] = off[i - 1] + counts[i - 1];
  return off;
}
// Elements per row of dim 0 (1 for a 0-d tensor, which counts as one row).
int64_t row_elements(const Tensor& x) {
  int64_t n = 1;
  for (int d = 1; d < x.dim(); ++d) n *= x.size(d);
  return n;
}
Shape with_rows(const Tensor& x, int64_t rows) {
  Shape s = x.shape();
  if (s.empty()) return {rows};
  s[0] = rows;
  return s;
}

// acc (c) = sum over p of parts (n, c), in order p = 0, 1, ..., n-1; the fixed order makes it bitwise
// reproducible. On the host a plain loop; on a device the backend's element-wise add (the same IEEE sums).
Tensor sum_in_rank_order(const Tensor& parts, int64_t n, int64_t c) {
  Tensor acc = Tensor::empty({c}, parts.dtype(), parts.device());
  if (c == 0) return acc;
  if (parts.device().is_cpu()) {
    dispatch_dtype(parts.dtype(), [&]<typename T>() {
      const T* src = parts.data<T>();
      T* dst = acc.data<T>();
      std::memcpy(dst, src, static_cast<size_t>(c) * sizeof(T));
      for (int64_t p = 1; p < n; ++p)
        for (int64_t i = 0; i < c; ++i) dst[i] = dst[i] + src[p * c + i];
    });
    return acc;
  }
  Tensor flat = parts.reshape({n, c});
  acc.copy_(flat.select(0, 0));
  for (int64_t p = 1; p < n; ++p) acc = moelab::add(acc, flat.select(0, p));
  return acc;
}

}  // namespace

std::string Communicator::where(const char* op) const {
  return std::string(op) + " on rank " + std::to_string(rank()) + " of " + std::to_string(size());
}

// A contiguous copy of x on the communicator's device (x itself when it already is one).
static Tensor staged(const Communicator& c, const Tensor& x) {
  Tensor t = x.detach();
  if (t.device() != c.device()) t = t.to(c.device());
  return t.is_contiguous() ? t : t.contiguous();
}

std::vector<int64_t> Communicator::exchange_counts(const std::vector<int64_t>& send) {
  MOELAB_CHECK(static_cast<int>(send.size()) == size(),
               where("exchange_counts") << ": " << send.size() << " counts given, one per rank expected");
  for (size_t p = 0; p < send.size(); ++p)
    MOELAB_CHECK(send[p] >= 0, where("exchange_counts") << ": negative count " << send[p] << " for rank " << p);
  return exchange_counts_raw(send);
}

Tensor Communicator::reduce_scatter_sum(const Tensor& x, const std::vector<int64_t>& chunk_rows) {
  NoGradGuard no_grad;
  const int n = size();
  MOELAB_CHECK(static_cast<int>(chunk_rows.size()) == n,
               where("reduce_scatter_sum") << ": " << chunk_rows.size() << " chunk sizes for " << n << " ranks");
  const int64_t rows = x.dim() == 0 ? 1 : x.size(0);
  MOELAB_CHECK(total(chunk_rows) == rows, where("reduce_scatter_sum") << ": chunk rows sum to "
                                                                      << total(chunk_rows) << ", x has " << rows);
  const int64_t re = row_elements(x);
  std::vector<int64_t> send_counts(n), recv_counts(n);
  for (int p = 0; p < n; ++p) {
    send_counts[p] = chunk_rows[p] * re;  // my part of rank p's chunk
    recv_counts[p] = chunk_rows[rank()] * re;  // every rank's part of my chunk
  }
  Tensor src = staged(*this, x);
  Tensor parts = Tensor::empty({n * recv_counts[0]}, x.dtype(), device());
  all_to_all_v_raw(src.raw_data(), send_counts, prefix_offsets(send_counts), parts.raw_data(), recv_counts,
                   prefix_offsets(recv_counts), x.dtype());
  Tensor mine = sum_in_rank_order(parts, n, recv_counts[0]);
  return mine.reshape(with_rows(x, chunk_rows[rank()])).to(x.device());
}

void Communicator::all_reduce_sum(Tensor& x) {
  NoGradGuard no_grad;
  const int n = size();
  if (n == 1 || x.numel() == 0) return;
  const int64_t total_elems = x.numel();
  std::vector<int64_t> counts(n);
  for (int p = 0; p < n; ++p) counts[p] = total_elems / n + (p < total_elems % n ? 1 : 0);
  Tensor flat = staged(*this, x).reshape({total_elems});
  Tensor mine = reduce_scatter_sum(flat, counts);  // on device(): flat is
  const bool in_place = x.is_contiguous() && x.device() == device();
  Tensor out = in_place ? x.detach() : Tensor::empty(x.shape(), x.dtype(), device());
  all_gather_v_raw(mine.raw_data(), counts[rank()], out.raw_data(), counts, prefix_offsets(counts), x.dtype());
  if (!in_place) x.detach().copy_(out);
}

Tensor Communicator::all_gather(const Tensor& x, std::vector<int64_t>* rows_per_rank) {
  NoGradGuard no_grad;
  const int n = size();
  MOELAB_CHECK(x.dim() >= 1, where("all_gather") << ": x must have a row dim, got a 0-d tensor");
  const int64_t re = row_elements(x);
  std::vector<int64_t> rows = exchange_counts_raw(std::vector<int64_t>(n, x.size(0)));
  std::vector<int64_t> widths = exchange_counts_raw(std::vector<int64_t>(n, re));
  for (int p = 0; p < n; ++p)
    MOELAB_CHECK(widths[p] == re, where("all_gather") << ": rows of " << re << " elements here, " << widths[p]
                                                      << " on rank " << p << " (trailing dims must agree)");
  std::vector<int64_t> counts(n);
  for (int p = 0; p < n; ++p) counts[p] = rows[p] * re;
  Tensor src = staged(*this, x);
  Tensor out = Tensor::empty(with_rows(x, total(rows)), x.dtype(), device());
  all_gather_v_raw(src.raw_data(), counts[rank()], out.raw_data(), counts, prefix_offsets(counts), x.dtype());
  if (rows_per_rank) *rows_per_rank = rows;
  return out.device() == x.device() ? out : out.to(x.device());
}

void Communicator::broadcast(Tensor& x, int root) {
  NoGradGuard no_grad;
  MOELAB_CHECK(root >= 0 && root < size(), where("broadcast") << ": root " << root << " is not a rank");
  if (size() == 1) return;
  const bool in_place = x.is_contiguous() && x.device() == device();
  Tensor buf = in_place ? x.detach() : staged(*this, x);
  broadcast_raw(buf.raw_data(), x.numel(), x.dtype(), root);
  if (!in_place) x.detach().copy_(buf);
}

Tensor Communicator::all_to_all_v(const Tensor& x, const std::vector<int64_t>& send_rows,
                                  const std::vector<int64_t>& recv_rows) {
  NoGradGuard no_grad;
  const int n = size();
  MOELAB_CHECK(x.dim() >= 1, where("all_to_all_v") << ": x must have a row dim, got a 0-d tensor");
  MOELAB_CHECK(static_cast<int>(send_rows.size()) == n && static_cast<int>(recv_rows.size()) == n,
               where("all_to_all_v") << ": " << send_rows.size() << " send and " << recv_rows.size()
                                     << " receive counts for " << n << " ranks");
  MOELAB_CHECK(total(send_rows) == x.size(0), where("all_to_all_v") << ": send rows sum to " << total(send_rows)
                                                                     << ", x has " << x.size(0) << " rows");
  const int64_t re = row_elements(x);
  std::vector<int64_t> sc(n), rc(n);
  for (int p = 0; p < n; ++p) {
    MOELAB_CHECK(send_rows[p] >= 0 && recv_rows[p] >= 0, where("all_to_all_v") << ": negative count for rank " << p);
    sc[p] = send_rows[p] * re;
    rc[p] = recv_rows[p] * re;
  }
  Tensor src = staged(*this, x);
  Tensor out = Tensor::empty(with_rows(x, total(recv_rows)), x.dtype(), device());
  all_to_all_v_raw(src.raw_data(), sc, prefix_offsets(sc), out.raw_data(), rc, prefix_offsets(rc), x.dtype());
  return out.device() == x.device() ? out : out.to(x.device());
}

// ---- the world ----

namespace {
std::mutex g_world_mutex;
std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> w;
  return w;
}
}  // namespace

#ifndef MOELAB_HAVE_MPI
bool mpi_built() { return false; }
std::unique_ptr<Communicator> make_mpi_communicator() {
  MOELAB_FAIL("this moelab was built without MPI (configure with -DMOELAB_MPI=ON and libopenmpi-dev installed)");
}
#else
bool mpi_built() { return true; }
#endif
// The NCCL communicator lives in the CUDA library and registers itself there (nccl_communicator.cpp).
namespace {
NcclFactory& nccl_factory() {
  static NcclFactory factory = nullptr;
  return factory;
}
}  // namespace
bool register_nccl_factory(NcclFactory factory) {
  nccl_factory() = factory;
  return true;
}
bool nccl_built() { return nccl_factory() != nullptr; }
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int cuda_device) {
  MOELAB_CHECK(nccl_built(), "this moelab was built without NCCL (it needs the CUDA backend and nccl.h / libnccl)");
  return nccl_factory()(bootstrap, cuda_device);
}

Communicator& world() {
  std::lock_guard<std::mutex> lock(g_world_mutex);
  auto& w = world_slot();
  if (w) return *w;
  const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE");
  const int launched_size = launched ? std::atoi(launched) : 1;
  if (launched && mpi_built()) {
    w = make_mpi_communicator();
  } else {
    MOELAB_CHECK(launched_size <= 1, "launched by mpirun with " << launched_size
                                         << " ranks, but this moelab was built without MPI: every rank would "
                                            "run the whole job alone (rebuild with -DMOELAB_MPI=ON)");
    w = make_local_communicator();
  }
  return *w;
}

bool world_is_distributed() {
  std::lock_guard<std::mutex> lock(g_world_mutex);
  return world_slot() && world_slot()->size() > 1;
}

Communicator& communicator_for(Device device) {
  Communicator& w = world();
  if (device.is_cpu() || !nccl_built()) return w;
  static std::mutex m;
  static std::map<int, std::unique_ptr<Communicator>> per_device;
  std::lock_guard<std::mutex> lock(m);
  auto& c = per_device[device.index];
  if (!c) c = make_nccl_communicator(w, device.index);
  return *c;
}

void abort_job(const std::string& message) {
  world().abort(message);
  std::_Exit(1);  // not reached: abort() ends the process
}

}  // namespace moelab::dist
