// A job whose last rank fails while the others wait in a collective: with run_or_abort the whole job must
// end (non-zero, naming the failing rank) instead of hanging. Run by expect_rank_failure.cmake.
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "core/dist/communicator.h"

int main() {
  moelab::dist::Communicator& world = moelab::dist::world();
  moelab::dist::run_or_abort([&] {
    std::vector<double> v(1000, 1.0);
    world.all_reduce_sum(v);  // every rank gets here: the job runs
    if (world.rank() == world.size() - 1) throw std::runtime_error("injected failure at step 3");
    world.all_reduce_sum(v);  // the others wait here for the failed rank
    std::printf("rank %d finished (it should have been stopped)\n", world.rank());
  });
  return 0;
}
