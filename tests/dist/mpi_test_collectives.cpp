// The communicator's collectives on any number of ranks (ctest runs this as one process and under mpirun
// with 2 and 3 ranks): values against plain loops over every rank's data, and all_reduce_sum's
// determinism (bitwise the same on every rank and equal to the rank-order serial sum).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/backend/device_select.h"
#include "core/dist/communicator.h"
#include "core/util/check.h"
#include "tests/dist/dist_testing.h"

namespace moelab::test {
namespace {

using dist::Communicator;
Communicator& comm() { return dist::world(); }

// Gathers every rank's copy of x and checks they are bitwise identical.
void expect_same_on_every_rank(const Tensor& x, const char* what) {
  std::vector<int64_t> rows;
  Tensor all = comm().all_gather(x.contiguous().reshape({1, x.numel()}), &rows);
  for (int p = 1; p < comm().size(); ++p)
    EXPECT_TRUE(same_bits(all.select(0, p), all.select(0, 0))) << what << ": rank " << p << " differs from rank 0";
}

TEST(Collectives, AllReduceSumIsTheRankOrderSerialSumForEveryDtype) {
  const int n = comm().size();
  for (DType t : {DType::f32, DType::f64, DType::i32, DType::i64}) {
    // Sizes below, at and above the rank count (chunks of unequal length, empty chunks).
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 2}, {7, 1}, {5, 13}, {301, 257}}) {
      Tensor x = rank_data(11, comm().rank(), rows, cols, t);
      comm().all_reduce_sum(x);
      Tensor expected = serial_sum(11, n, rows, cols, t);
      EXPECT_TRUE(same_bits(x, expected)) << dtype_name(t) << " (" << rows << ", " << cols << ") rank "
                                          << comm().rank();
      expect_same_on_every_rank(x, "all_reduce_sum");
    }
  }
}

TEST(Collectives, AllReduceSumIsBitwiseReproducibleWhereOrderMatters) {
  // Values whose f32 sum depends on the order of summation: the test could tell another order apart.
  const int n = comm().size();
  const int64_t len = 4099;
  auto values = [&](int r) {
    std::vector<float> v(len);
    for (int64_t i = 0; i < len; ++i) v[i] = float((r % 2 ? -1.0 : 1.0) * std::ldexp(1.0 + 0.37 * r + 1e-3 * i, r * 9 - int(i % 5)));
    return v;
  };
  std::vector<float> forward = values(0), backward = values(n - 1);
  for (int r = 1; r < n; ++r) {
    std::vector<float> v = values(r);
    for (int64_t i = 0; i < len; ++i) forward[i] = forward[i] + v[i];
  }
  for (int r = n - 2; r >= 0; --r) {
    std::vector<float> v = values(r);
    for (int64_t i = 0; i < len; ++i) backward[i] = backward[i] + v[i];
  }
  if (n >= 3) {
    ASSERT_NE(forward, backward) << "the data must be order-sensitive for this test to mean anything";
  }
  for (int repeat = 0; repeat < 3; ++repeat) {
    std::vector<float> v = values(comm().rank());
    comm().all_reduce_sum(v);
    EXPECT_EQ(v, forward) << "repeat " << repeat;  // float ==: every element bitwise (no NaN here)
    Tensor t = Tensor::from_vector(v, {len});
    expect_same_on_every_rank(t, "order-sensitive all_reduce_sum");
  }
}

TEST(Collectives, AllReduceSumOfANonContiguousView) {
  const int n = comm().size();
  Tensor base = rank_data(12, comm().rank(), 6, 9, DType::f64);
  Tensor view = base.t();  // (9, 6), strided
  comm().all_reduce_sum(view);
  EXPECT_TRUE(same_bits(base, serial_sum(12, n, 6, 9, DType::f64)));
}

TEST(Collectives, ReduceScatterGivesEachRankItsRowsOfTheSum) {
  const int n = comm().size();
  std::vector<int64_t> chunks(n);
  int64_t rows = 0;
  for (int p = 0; p < n; ++p) rows += chunks[p] = (p * 2 + 1) % 4;  // 1, 3, 1, ...: uneven, maybe empty
  Tensor x = rank_data(13, comm().rank(), rows, 5, DType::f32);
  Tensor mine = comm().reduce_scatter_sum(x, chunks);
  int64_t start = 0;
  for (int p = 0; p < comm().rank(); ++p) start += chunks[p];
  Tensor expected = serial_sum(13, n, rows, 5, DType::f32).slice(0, start, start + chunks[comm().rank()]);
  ASSERT_EQ(mine.shape(), expected.shape());
  EXPECT_TRUE(same_bits(mine, expected));
}

TEST(Collectives, AllGatherConcatenatesVariableRowCountsInRankOrder) {
  const int n = comm().size(), me = comm().rank();
  Tensor x = rank_data(14, me, me + 1, 3, DType::i64);  // rank r has r + 1 rows
  std::vector<int64_t> rows;
  Tensor all = comm().all_gather(x, &rows);
  ASSERT_EQ(all.dim(), 2);
  EXPECT_EQ(all.size(1), 3);
  int64_t at = 0;
  for (int p = 0; p < n; ++p) {
    EXPECT_EQ(rows[p], p + 1);
    EXPECT_TRUE(same_bits(all.slice(0, at, at + p + 1), rank_data(14, p, p + 1, 3, DType::i64))) << "rank " << p;
    at += p + 1;
  }
  EXPECT_EQ(all.size(0), at);
  std::vector<double> v(me + 2, double(me));
  std::vector<double> gathered = comm().all_gather(v);
  std::vector<double> expected;
  for (int p = 0; p < n; ++p) expected.insert(expected.end(), p + 2, double(p));
  EXPECT_EQ(gathered, expected);
}

TEST(Collectives, AllGatherRejectsDisagreeingTrailingDims) {
  Tensor x = Tensor::zeros({2, comm().rank() == comm().size() - 1 ? 4 : 3});
  if (comm().size() == 1) GTEST_SKIP() << "needs two ranks";
  try {
    comm().all_gather(x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trailing dims must agree"), std::string::npos) << e.what();
  }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  const int n = comm().size();
  for (int root = 0; root < n; ++root) {
    Tensor x = rank_data(15, comm().rank(), 4, 33, DType::f64);
    comm().broadcast(x, root);
    EXPECT_TRUE(same_bits(x, rank_data(15, root, 4, 33, DType::f64))) << "root " << root;
    std::vector<float> v(10, float(comm().rank() * 10 + 1));
    comm().broadcast(v, root);
    EXPECT_EQ(v, std::vector<float>(10, float(root * 10 + 1)));
  }
}

// Row j of rank s's block for rank p encodes (s, p, j); counts vary per pair and include zeros.
int64_t pair_rows(int s, int p) { return (3 * s + p) % 4; }
Tensor pair_block(int s, int p, int64_t cols) {
  Tensor b = Tensor::empty({pair_rows(s, p), cols}, DType::f64);
  double* d = b.data<double>();
  for (int64_t j = 0; j < pair_rows(s, p); ++j)
    for (int64_t c = 0; c < cols; ++c) d[j * cols + c] = s * 1e6 + p * 1e4 + j * 10 + c;
  return b;
}

TEST(Collectives, AllToAllVDeliversEveryBlockToItsRank) {
  const int n = comm().size(), me = comm().rank();
  const int64_t cols = 3;
  std::vector<int64_t> send(n);
  std::vector<Tensor> blocks;
  for (int p = 0; p < n; ++p) {
    send[p] = pair_rows(me, p);
    blocks.push_back(pair_block(me, p, cols));
  }
  std::vector<int64_t> recv = comm().exchange_counts(send);
  for (int p = 0; p < n; ++p) EXPECT_EQ(recv[p], pair_rows(p, me)) << "count from rank " << p;
  Tensor y = comm().all_to_all_v(concat(blocks, 0), send, recv);
  int64_t at = 0;
  for (int p = 0; p < n; ++p) {
    EXPECT_TRUE(same_bits(y.slice(0, at, at + recv[p]), pair_block(p, me, cols))) << "block from rank " << p;
    at += recv[p];
  }
  EXPECT_EQ(y.size(0), at);
}

TEST(Collectives, BadArgumentsThrowOnEveryRankWithTheirPlace) {
  const int n = comm().size();
  try {
    comm().exchange_counts(std::vector<int64_t>(n + 1, 1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one per rank expected"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(comm().rank())), std::string::npos) << e.what();
  }
  Tensor x = Tensor::zeros({5, 2});
  EXPECT_THROW(comm().all_to_all_v(x, std::vector<int64_t>(n, 0), std::vector<int64_t>(n, 0)), Error);
  EXPECT_THROW(comm().broadcast(x, n), Error);
}

TEST(Collectives, BarrierHoldsEveryRankUntilAllArrive) {
  std::vector<int64_t> id{std::chrono::steady_clock::now().time_since_epoch().count()};
  comm().broadcast(id, 0);  // one file name for all ranks of this run
  const auto marker = std::filesystem::temp_directory_path() / ("moelab_barrier_" + std::to_string(id[0]));
  if (comm().rank() == 0) {
    std::filesystem::remove(marker);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the others are waiting by now
    std::ofstream(marker) << "written before the barrier\n";
  }
  comm().barrier();
  EXPECT_TRUE(std::filesystem::exists(marker)) << "rank " << comm().rank() << " passed the barrier early";
  comm().barrier();
  if (comm().rank() == 0) std::filesystem::remove(marker);
}

// CUDA tensors go through NCCL when it is built (one device per rank), else through host memory; either
// way the results equal the host communicator's bit for bit (the same rank-order sums).
TEST(Collectives, CudaTensorsGiveTheHostResults) {
  const int devices = cuda_device_count();
  if (devices == 0) GTEST_SKIP() << "no CUDA device (" << cuda_device_summary() << ")";
  if (dist::nccl_built() && devices < comm().size())
    GTEST_SKIP() << "NCCL needs one device per rank: " << devices << " devices for " << comm().size() << " ranks";
  const Device dev = Device::cuda(comm().rank() % devices);
  Communicator& c = dist::communicator_for(dev);
  EXPECT_EQ(c.name(), dist::nccl_built() ? "nccl" : comm().name());
  const int n = c.size(), me = c.rank();
  for (DType t : {DType::f32, DType::f64, DType::i64}) {
    Tensor x = rank_data(16, me, 37, 11, t).to(dev);
    c.all_reduce_sum(x);
    EXPECT_TRUE(x.device() == dev);
    EXPECT_TRUE(same_bits(x.to(Device::cpu()), serial_sum(16, n, 37, 11, t))) << dtype_name(t);
  }
  Tensor g = c.all_gather(rank_data(17, me, me + 1, 3, DType::f32).to(dev));
  int64_t at = 0;
  for (int p = 0; p < n; ++p) {
    EXPECT_TRUE(same_bits(g.slice(0, at, at + p + 1).to(Device::cpu()), rank_data(17, p, p + 1, 3, DType::f32)));
    at += p + 1;
  }
  std::vector<int64_t> send(n), recv;
  std::vector<Tensor> blocks;
  for (int p = 0; p < n; ++p) {
    send[p] = pair_rows(me, p);
    blocks.push_back(pair_block(me, p, 3));
  }
  recv = c.exchange_counts(send);
  Tensor y = c.all_to_all_v(concat(blocks, 0).to(dev), send, recv).to(Device::cpu());
  at = 0;
  for (int p = 0; p < n; ++p) {
    EXPECT_TRUE(same_bits(y.slice(0, at, at + recv[p]), pair_block(p, me, 3))) << "block from rank " << p;
    at += recv[p];
  }
  Tensor b = rank_data(18, me, 2, 5, DType::f64).to(dev);
  c.broadcast(b, n - 1);
  EXPECT_TRUE(same_bits(b.to(Device::cpu()), rank_data(18, n - 1, 2, 5, DType::f64)));
}

}  // namespace
}  // namespace moelab::test
