// tg::distributed: the processes of an `mpirun` job and the collectives between them, over MPI
// (OpenMPI from Debian's libopenmpi-dev). Every process runs the same program; collectives must be
// called by every process, in the same order.
//
//   int main(int argc, char** argv) {
//     tg::distributed::Session session(argc, argv);        // MPI_Init; MPI_Finalize at the end
//     int me = tg::distributed::rank(), n = tg::distributed::world_size();
//     tg::Tensor t = tg::full({3}, double(me));
//     tg::distributed::all_reduce(t, tg::distributed::ReduceOp::Sum);  // in place, on every rank
//   }
//
// Errors: a collective first checks that every rank passed the same dtype and shape (one small
// all-gather), and on a mismatch every rank throws the same tg::Error naming the collective and
// each rank's tensor, so nothing hangs. An exception that escapes main on any rank (through
// std::terminate) prints "tapegrad: rank R of W: <message>" and calls MPI_Abort, which makes
// mpirun stop every rank within seconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

namespace tg::distributed {

enum class ReduceOp { Sum, Mean, Max };  // Mean: floating dtypes only

// RAII: MPI_Init_thread (funneled: only the thread that created the session calls MPI) and the
// abort-on-uncaught-exception handler; MPI_Finalize when it ends. Started outside mpirun, the
// program is a world of one (rank 0 of 1).
class Session {
 public:
  Session(int& argc, char**& argv);
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  void start(int* argc, char*** argv);
};

bool is_initialized();  // a Session is active
int rank();             // 0 when not initialised
int world_size();       // 1 when not initialised
void barrier();

// In place on every rank: the element-wise sum, mean or maximum over ranks.
void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
// In place: every rank gets root's values.
void broadcast(Tensor& tensor, int root = 0);
// Every rank's tensor (the same dtype and shape on each), in rank order.
std::vector<Tensor> all_gather(const Tensor& tensor);
// input's first dim is world_size·k: the reduction over ranks of the input, of which this rank
// gets rows [rank·k, (rank + 1)·k) (PyTorch's reduce_scatter_tensor).
Tensor reduce_scatter(const Tensor& input, ReduceOp op = ReduceOp::Sum);

// Stops every rank: prints "tapegrad: rank R of W: <message>" and calls MPI_Abort.
[[noreturn]] void abort(const std::string& message);

namespace detail {
// The unchecked collectives the library's own code uses (its calls match on every rank by
// construction): in-place sums of doubles and of raw buffers, and a gather of doubles.
void all_reduce_sum(std::vector<double>& values);
std::vector<double> all_gather(const std::vector<double>& values);
void all_reduce_max(std::vector<std::int64_t>& values);
void broadcast(Tensor& tensor, int root);  // values only, whatever requires_grad says
}  // namespace detail

}  // namespace tg::distributed
