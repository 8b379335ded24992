// Rank 1 throws while rank 0 waits in an all-reduce that rank 1 never joins: the uncaught
// exception must stop both ranks, with rank 1's message, instead of leaving rank 0 blocked.
#include <tapegrad/tapegrad.hpp>

#include "distributed/distributed.hpp"

int main(int argc, char** argv) {
  tg::distributed::Session session(argc, argv);
  tg::distributed::barrier();
  if (tg::distributed::rank() == 1) tg::fail("loader: batch 3 of rank 1 is corrupt");
  tg::Tensor t = tg::ones({4});
  tg::distributed::all_reduce(t);  // never completes: rank 1 is gone
  return 0;
}
