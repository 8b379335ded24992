// DistributedDataParallel: construction (consistency check, broadcast from rank 0, buckets), the
// forward (buffers, unused-parameter search), then the backward's hooks and its end.
#include "distributed/ddp.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "distributed/collectives.hpp"

namespace tg::distributed {

struct DistributedDataParallel::State {
  struct Bucket {
    DType dtype = kFloat32;
    std::vector<std::size_t> parameters;  // indices into State::parameters
    std::vector<std::size_t> offsets;     // where each one's gradient starts in buffer
    std::size_t numel = 0;
    Tensor buffer;                        // the flat gradients, all-reduced in place
    std::size_t pending = 0;              // parameters not ready yet in this backward
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::vector<Tensor> parameters;  // the trainable ones, in registration order
  std::vector<std::string> names;
  std::vector<std::uint64_t> hook_ids;
  std::vector<std::size_t> bucket_of, slot_of;  // per parameter: its bucket and its place in it
  std::vector<Bucket> buckets;
  std::vector<bool> ready;        // per parameter, in this backward
  std::vector<bool> used;         // per parameter, found in the last forward's graph (find_unused)
  std::size_t next_bucket = 0;    // buckets start in index order
  int world_size = 1;
  bool in_backward = false;
  bool no_sync = false;
  CommunicationStats stats;
};

namespace {

// Every leaf the graph of `output` reaches.
std::unordered_set<const TensorImpl*> reachable_leaves(const Tensor& output) {
  std::unordered_set<const TensorImpl*> leaves;
  if (!output.defined() || !output.requires_grad()) return leaves;
  if (!output.grad_fn()) {
    leaves.insert(output.impl().get());
    return leaves;
  }
  std::unordered_set<const Node*> seen{output.grad_fn().get()};
  std::vector<const Node*> pending{output.grad_fn().get()};
  while (!pending.empty()) {
    const Node* node = pending.back();
    pending.pop_back();
    for (const Edge& edge : node->inputs()) {
      if (edge.leaf) leaves.insert(edge.leaf.get());
      if (edge.node && seen.insert(edge.node.get()).second) pending.push_back(edge.node.get());
    }
  }
  return leaves;
}

}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module,
                                                 DistributedDataParallelOptions options)
    : Module("DistributedDataParallel"), module_(std::move(module)), options_(options),
      state_(std::make_unique<State>()) {
  TG_CHECK(module_ != nullptr, "DistributedDataParallel: the module is null");
  TG_CHECK(options_.bucket_cap_mb() > 0, "DistributedDataParallel: bucket_cap_mb must be positive, got ",
           options_.bucket_cap_mb());
  register_module("module", module_);
  State& s = *state_;
  s.world_size = world_size();
  for (const auto& [name, p] : module_->named_parameters())
    if (p.requires_grad()) {
      s.parameters.push_back(p);
      s.names.push_back(name);
    }

  // Every rank must hold the same model: the same parameters and buffers, by name, shape and
  // dtype. A checksum of their description is compared first, so that a mismatch is one clear
  // error on every rank instead of garbage or a hang in the broadcasts below.
  std::string description;
  for (const auto& [name, t] : module_->state_dict())
    description += name + ":" + dtype_name(t.dtype()) + shape_str(t.shape()) + ";";
  const double checksum = double(std::hash<std::string>{}(description) % (1ULL << 52));
  std::vector<double> all = detail::all_gather({checksum, double(s.parameters.size())});
  for (std::size_t r = 1; r < all.size() / 2; ++r)
    TG_CHECK(all[2 * r] == all[0], "DistributedDataParallel: rank ", r, "'s model differs from rank 0's (",
             std::size_t(all[2 * r + 1]), " vs ", std::size_t(all[1]),
             " trainable parameters; names, shapes or dtypes differ); every rank must build the same model");

  {  // rank 0's values everywhere
    NoGradGuard no_grad;
    for (Tensor t : module_->parameters()) detail::broadcast(t, 0);
    for (Tensor t : module_->buffers()) detail::broadcast(t, 0);
  }

  // Buckets: reverse registration order, one dtype per bucket, up to bucket_cap_mb each.
  const auto cap = std::size_t(options_.bucket_cap_mb() * 1024 * 1024);
  s.bucket_of.resize(s.parameters.size());
  s.slot_of.resize(s.parameters.size());
  for (std::size_t k = s.parameters.size(); k-- > 0;) {
    const Tensor& p = s.parameters[k];
    const std::size_t bytes = p.numel() * dtype_size(p.dtype());
    if (s.buckets.empty() || s.buckets.back().dtype != p.dtype() ||
        (s.buckets.back().numel > 0 && (s.buckets.back().numel * dtype_size(p.dtype()) + bytes) > cap))
      s.buckets.push_back({p.dtype(), {}, {}, 0, Tensor(), 0, MPI_REQUEST_NULL});
    State::Bucket& b = s.buckets.back();
    s.bucket_of[k] = s.buckets.size() - 1;
    s.slot_of[k] = b.parameters.size();
    b.parameters.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
  }
  for (State::Bucket& b : s.buckets) b.buffer = zeros({b.numel}, b.dtype);
  s.ready.assign(s.parameters.size(), false);
  s.used.assign(s.parameters.size(), true);

  for (std::size_t k = 0; k < s.parameters.size(); ++k)
    s.hook_ids.push_back(s.parameters[k].register_post_accumulate_grad_hook(
        [this, k](Tensor&) { on_gradient_ready(k); }));
}

DistributedDataParallel::~DistributedDataParallel() {
  for (std::size_t k = 0; k < state_->parameters.size(); ++k)
    state_->parameters[k].remove_post_accumulate_grad_hook(state_->hook_ids[k]);
}

const CommunicationStats& DistributedDataParallel::stats() const { return state_->stats; }
std::size_t DistributedDataParallel::bucket_count() const { return state_->buckets.size(); }

// ---- forward ------------------------------------------------------------------------------------

void DistributedDataParallel::before_forward() {
  if (!options_.broadcast_buffers() || !module_->is_training() || !GradMode::is_enabled()) return;
  NoGradGuard no_grad;
  for (Tensor t : module_->buffers()) detail::broadcast(t, 0);
}

void DistributedDataParallel::after_forward(const Tensor& output) {
  if (!options_.find_unused_parameters()) return;
  const std::unordered_set<const TensorImpl*> leaves = reachable_leaves(output);
  for (std::size_t k = 0; k < state_->parameters.size(); ++k)
    state_->used[k] = leaves.count(state_->parameters[k].impl().get()) > 0;
}

Tensor DistributedDataParallel::forward(const Tensor& input) {
  before_forward();
  Tensor output = module_->forward(input);
  after_forward(output);
  return output;
}

// ---- backward -----------------------------------------------------------------------------------

DistributedDataParallel::NoSync::NoSync(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.state_->no_sync) {
  ddp_.state_->no_sync = true;
}
DistributedDataParallel::NoSync::~NoSync() { ddp_.state_->no_sync = previous_; }

void DistributedDataParallel::on_gradient_ready(std::size_t parameter) {
  State& s = *state_;
  if (s.no_sync || s.world_size == 1) return;  // nothing to average in a world of one
  auto mark_ready = [&](std::size_t k) {
    if (s.ready[k]) return;
    s.ready[k] = true;
    State::Bucket& b = s.buckets[s.bucket_of[k]];
    const std::size_t offset = b.offsets[s.slot_of[k]];
    const Tensor grad = s.parameters[k].grad();
    dispatch_floating(b.dtype, "DistributedDataParallel", [&]<class T>() {
      T* into = b.buffer.mutable_data<T>() + offset;
      if (grad.defined())
        std::copy(grad.data<T>(), grad.data<T>() + grad.numel(), into);
      else
        std::fill(into, into + s.parameters[k].numel(), T(0));
    });
    --b.pending;
  };
  if (!s.in_backward) {  // the first gradient of this backward
    s.in_backward = true;
    for (State::Bucket& b : s.buckets) b.pending = b.parameters.size();
    Engine::queue_callback([this] { finish_backward(); });
    if (options_.find_unused_parameters())
      for (std::size_t k = 0; k < s.parameters.size(); ++k)
        if (!s.used[k]) mark_ready(k);
  }
  mark_ready(parameter);
  // Start every bucket that is full, in order; then let MPI progress the ones in flight (OpenMPI
  // moves non-blocking collectives forward only inside MPI calls).
  while (s.next_bucket < s.buckets.size() && s.buckets[s.next_bucket].pending == 0) {
    State::Bucket& b = s.buckets[s.next_bucket++];
    MPI_Iallreduce(MPI_IN_PLACE, dispatch_floating(b.dtype, "DistributedDataParallel", [&]<class T>() -> void* {
                     return b.buffer.mutable_data<T>();
                   }),
                   int(b.numel), b.dtype == kFloat64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &b.request);
    ++s.stats.buckets;
    s.stats.bytes += b.numel * dtype_size(b.dtype);
  }
  for (std::size_t i = 0; i < s.next_bucket; ++i) {
    if (s.buckets[i].request == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Test(&s.buckets[i].request, &done, MPI_STATUS_IGNORE);
  }
}

void DistributedDataParallel::finish_backward() {
  State& s = *state_;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < s.next_bucket; ++i) MPI_Wait(&s.buckets[i].request, MPI_STATUS_IGNORE);
  s.stats.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t launched = s.next_bucket;
  s.next_bucket = 0;
  s.in_backward = false;
  std::vector<bool> ready = s.ready;
  s.ready.assign(s.parameters.size(), false);

  if (launched < s.buckets.size()) {
    std::string missing;
    std::size_t count = 0;
    for (std::size_t k = 0; k < s.parameters.size(); ++k)
      if (!ready[k] && count++ < 8) missing += (missing.empty() ? "" : ", ") + s.names[k];
    fail("DistributedDataParallel: rank ", rank(), ": ", count, " parameter", count == 1 ? "" : "s", " got no gradient "
         "in this backward (", missing, count > 8 ? ", ..." : "", "), so their gradients cannot be averaged. If a "
         "forward may leave parameters unused, pass DistributedDataParallelOptions().find_unused_parameters(true)");
  }

  // A parameter unused on every rank keeps its gradient as it was (find_unused_parameters only).
  std::vector<std::int64_t> used_anywhere(s.parameters.size(), 1);
  if (options_.find_unused_parameters()) {
    for (std::size_t k = 0; k < s.parameters.size(); ++k) used_anywhere[k] = s.used[k] ? 1 : 0;
    detail::all_reduce_max(used_anywhere);
  }
  NoGradGuard no_grad;
  const double n = double(world_size());
  for (State::Bucket& b : s.buckets)
    for (std::size_t slot = 0; slot < b.parameters.size(); ++slot) {
      const std::size_t k = b.parameters[slot];
      if (!used_anywhere[k]) continue;
      Tensor& p = s.parameters[k];
      Tensor grad = p.grad();
      if (!grad.defined()) {
        grad = zeros(p.shape(), p.dtype());
        p.set_grad(grad);
      }
      dispatch_floating(b.dtype, "DistributedDataParallel", [&]<class T>() {
        const T* sum = b.buffer.data<T>() + b.offsets[slot];
        T* out = grad.mutable_data<T>();
        const std::size_t count = grad.numel();
        const T divisor = T(n);
        for (std::size_t i = 0; i < count; ++i) out[i] = sum[i] / divisor;  // PyTorch divides, too
      });
    }
  ++s.stats.steps;
}

}  // namespace tg::distributed
