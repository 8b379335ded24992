// The collectives over MPI_COMM_WORLD. Each public one checks every rank's dtype and shape with
// one small all-gather before it moves any data, so a mismatch is an error on every rank, never a
// hang or a silent partial result.
#include "distributed/collectives.hpp"

#include <mpi.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/shape.hpp"

namespace tg::distributed {

namespace {

bool session_active = false;
bool we_initialised = false;
std::terminate_handler previous_terminate = nullptr;

// An exception that escapes main on one rank would otherwise leave the others blocked in their
// next collective for ever.
void abort_on_terminate() {
  std::string message = "std::terminate called without an active exception";
  if (std::exception_ptr error = std::current_exception()) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "an exception that is not a std::exception";
    }
  }
  abort(message);
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case kFloat32: return MPI_FLOAT;
    case kFloat64: return MPI_DOUBLE;
    default: return MPI_INT64_T;
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Max ? MPI_MAX : MPI_SUM; }

void check_mpi(int status, const char* collective) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  fail(collective, ": MPI failed on rank ", rank(), ": ", std::string(text, std::size_t(length)));
}

// What every rank passed to a collective: dtype, rank, up to 8 dims, and one extra number (the
// reduce op or the broadcast root), gathered from every rank and compared with rank 0's.
constexpr std::size_t kMaxDims = 8;
using Header = std::array<std::int64_t, 3 + kMaxDims>;

std::string describe(const Header& h) {
  std::string out = dtype_name(DType(h[0]));
  out += " [";
  for (std::int64_t d = 0; d < h[1]; ++d) out += (d ? ", " : "") + std::to_string(h[std::size_t(3 + d)]);
  return out + "]";
}

void check_same_everywhere(const char* collective, const Tensor& tensor, std::int64_t extra, const char* extra_name) {
  TG_CHECK(tensor.defined(), collective, ": rank ", rank(), " passed an undefined tensor");
  TG_CHECK(tensor.dim() <= kMaxDims, collective, ": rank ", rank(), " passed a ", tensor.dim(),
           "D tensor; collectives take at most ", kMaxDims, " dims");
  if (!is_initialized()) return;
  Header mine{};
  mine[0] = std::int64_t(tensor.dtype());
  mine[1] = std::int64_t(tensor.dim());
  mine[2] = extra;
  for (std::size_t d = 0; d < tensor.dim(); ++d) mine[3 + d] = std::int64_t(tensor.shape()[d]);
  std::vector<Header> all(static_cast<std::size_t>(world_size()));
  check_mpi(MPI_Allgather(mine.data(), int(mine.size()), MPI_INT64_T, all.data(), int(mine.size()), MPI_INT64_T,
                          MPI_COMM_WORLD),
            collective);
  bool same = true, same_extra = true;
  for (const Header& h : all) {
    same = same && h == all[0];
    same_extra = same_extra && h[2] == all[0][2];
  }
  if (same) return;
  auto extra_str = [&](std::int64_t v) {
    static const char* const ops[] = {"sum", "mean", "max"};
    return std::string(extra_name) == "op" && v >= 0 && v < 3 ? std::string(ops[v]) : std::to_string(v);
  };
  std::string ranks;
  for (std::size_t r = 0; r < all.size(); ++r) {
    ranks += (r ? ", rank " : "rank ") + std::to_string(r) + " " + describe(all[r]);
    if (extra_name && !same_extra) ranks += std::string(" ") + extra_name + " " + extra_str(all[r][2]);
  }
  fail(collective, ": the ranks passed different tensors (", ranks, "); every rank must pass the same dtype and shape",
       extra_name ? std::string(" and ") + extra_name : std::string());
}

void check_writable(const char* collective, const Tensor& tensor) {
  TG_CHECK(!(tensor.requires_grad() && GradMode::is_enabled()), collective, ": rank ", rank(), "'s tensor ",
           shape_str(tensor.shape()), " requires grad; collectives change values in place and are not recorded, "
           "so call it under tg::NoGradGuard");
}

void* raw(Tensor& tensor) {
  return dispatch_all(tensor.dtype(), [&]<class T>() -> void* { return tensor.mutable_data<T>(); });
}
const void* raw(const Tensor& tensor) {
  return dispatch_all(tensor.dtype(), [&]<class T>() -> const void* { return tensor.data<T>(); });
}

}  // namespace

Session::Session() { start(nullptr, nullptr); }
Session::Session(int& argc, char**& argv) { start(&argc, &argv); }

void Session::start(int* argc, char*** argv) {
  TG_CHECK(!session_active, "distributed::Session: a session is already active");
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "distributed::Session");
    we_initialised = true;
  }
  // Errors come back as codes (turned into tg::Error), not as MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  session_active = true;
  previous_terminate = std::set_terminate(abort_on_terminate);
}

Session::~Session() {
  std::set_terminate(previous_terminate);
  session_active = false;
  if (we_initialised) {
    MPI_Finalize();
    we_initialised = false;
  }
}

bool is_initialized() { return session_active; }

int rank() {
  if (!session_active) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  if (!session_active) return 1;
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

void barrier() {
  if (session_active) check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void abort(const std::string& message) {
  std::fprintf(stderr, "tapegrad: rank %d of %d: %s\n", rank(), world_size(), message.c_str());
  std::fflush(stderr);
  if (session_active) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void all_reduce(Tensor& tensor, ReduceOp op) {
  check_same_everywhere("all_reduce", tensor, std::int64_t(op), "op");
  TG_CHECK(op != ReduceOp::Mean || is_floating(tensor.dtype()), "all_reduce: mean of an int64 tensor ",
           shape_str(tensor.shape()), " on rank ", rank(), " is not an integer; use sum");
  check_writable("all_reduce", tensor);
  if (!session_active || tensor.numel() == 0) return;
  NoGradGuard no_grad;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, raw(tensor), int(tensor.numel()), mpi_type(tensor.dtype()), mpi_op(op),
                          MPI_COMM_WORLD),
            "all_reduce");
  if (op == ReduceOp::Mean) {
    const double n = double(world_size());
    dispatch_floating(tensor.dtype(), "all_reduce", [&]<class T>() {
      T* p = tensor.mutable_data<T>();
      for (std::size_t i = 0; i < tensor.numel(); ++i) p[i] = T(double(p[i]) / n);
    });
  }
}

void broadcast(Tensor& tensor, int root) {
  TG_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank (world size ", world_size(),
           ")");
  check_same_everywhere("broadcast", tensor, root, "root");
  check_writable("broadcast", tensor);
  if (!session_active || tensor.numel() == 0) return;
  NoGradGuard no_grad;
  void* data = rank() == root ? const_cast<void*>(raw(std::as_const(tensor))) : raw(tensor);
  check_mpi(MPI_Bcast(data, int(tensor.numel()), mpi_type(tensor.dtype()), root, MPI_COMM_WORLD), "broadcast");
}

std::vector<Tensor> all_gather(const Tensor& tensor) {
  check_same_everywhere("all_gather", tensor, 0, nullptr);
  const auto n = std::size_t(world_size());
  Shape stacked = tensor.shape();
  stacked.insert(stacked.begin(), n);
  Tensor all = empty(stacked, tensor.dtype());
  if (session_active && tensor.numel() > 0)
    check_mpi(MPI_Allgather(raw(tensor), int(tensor.numel()), mpi_type(tensor.dtype()), raw(all),
                            int(tensor.numel()), mpi_type(tensor.dtype()), MPI_COMM_WORLD),
              "all_gather");
  else if (tensor.numel() > 0)
    all = unsqueeze(tensor.detach().clone(), 0);
  std::vector<Tensor> parts;
  for (std::size_t r = 0; r < n; ++r) parts.push_back(select(all, 0, std::int64_t(r)).clone());
  return parts;
}

Tensor reduce_scatter(const Tensor& input, ReduceOp op) {
  check_same_everywhere("reduce_scatter", input, std::int64_t(op), "op");
  const auto n = std::size_t(world_size());
  TG_CHECK(input.dim() >= 1 && input.shape()[0] % n == 0, "reduce_scatter: rank ", rank(), "'s input ",
           shape_str(input.shape()), " must have a first dim divisible by the world size ", n);
  TG_CHECK(op != ReduceOp::Mean || is_floating(input.dtype()), "reduce_scatter: mean of an int64 tensor ",
           shape_str(input.shape()), " on rank ", rank(), " is not an integer; use sum");
  Shape part_shape = input.shape();
  part_shape[0] /= n;
  Tensor out = empty(part_shape, input.dtype());
  if (!session_active) {
    out = input.detach().clone();
  } else if (out.numel() > 0) {
    check_mpi(MPI_Reduce_scatter_block(raw(input), raw(out), int(out.numel()), mpi_type(input.dtype()), mpi_op(op),
                                       MPI_COMM_WORLD),
              "reduce_scatter");
  }
  if (op == ReduceOp::Mean && session_active) {
    dispatch_floating(out.dtype(), "reduce_scatter", [&]<class T>() {
      T* p = out.mutable_data<T>();
      for (std::size_t i = 0; i < out.numel(); ++i) p[i] = T(double(p[i]) / double(n));
    });
  }
  return out;
}

namespace detail {

void all_reduce_sum(std::vector<double>& values) {
  if (!session_active || values.empty()) return;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
            "all_reduce");
}

void all_reduce_max(std::vector<std::int64_t>& values) {
  if (!session_active || values.empty()) return;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD),
            "all_reduce");
}

void broadcast(Tensor& tensor, int root) {
  if (!session_active || tensor.numel() == 0) return;
  NoGradGuard no_grad;
  check_mpi(MPI_Bcast(raw(tensor), int(tensor.numel()), mpi_type(tensor.dtype()), root, MPI_COMM_WORLD), "broadcast");
}

std::vector<double> all_gather(const std::vector<double>& values) {
  if (!session_active) return values;
  std::vector<double> all(values.size() * std::size_t(world_size()));
  check_mpi(MPI_Allgather(values.data(), int(values.size()), MPI_DOUBLE, all.data(), int(values.size()), MPI_DOUBLE,
                          MPI_COMM_WORLD),
            "all_gather");
  return all;
}

}  // namespace detail

}  // namespace tg::distributed
