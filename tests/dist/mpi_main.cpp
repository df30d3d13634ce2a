// main() of the MPI test programs: every rank runs every test; the exit status is the same on every rank
// (non-zero when a test failed on any rank), so mpirun and ctest see one verdict.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "core/dist/communicator.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  moelab::dist::Communicator& world = moelab::dist::world();
  std::printf("[rank %d of %d, communicator %s]\n", world.rank(), world.size(), world.name().c_str());
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  std::vector<int64_t> any_failed{failed};
  world.all_reduce_sum(any_failed);
  if (any_failed[0] != 0 && world.rank() == 0)
    std::printf("%ld of %d ranks had failing tests\n", long(any_failed[0]), world.size());
  return any_failed[0] != 0 ? 1 : 0;
}
