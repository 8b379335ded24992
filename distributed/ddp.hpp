// DistributedDataParallel: PyTorch's DDP for any Module, over MPI. Every rank holds a whole copy
// of the model and trains it on its own part of each batch; gradients are averaged across ranks
// during backward, so every rank's optimizer takes the same step and the copies stay identical.
//
//   tg::distributed::Session session(argc, argv);
//   auto model = std::make_shared<tg::nn::Sequential>(...);
//   tg::distributed::DistributedDataParallel ddp(model);   // rank 0's parameters and buffers everywhere
//   tg::optim::Adam optimizer(ddp.parameters(), ...);
//   for (batch : loader) { optimizer.zero_grad(); loss_fn(ddp(batch.input), batch.target).backward(); optimizer.step(); }
//
// How: the trainable parameters are cut into buckets of about bucket_cap_mb (PyTorch's 25 MB), in
// reverse registration order (the order their gradients tend to become ready). A hook on each
// parameter copies its gradient into its bucket when the backward has finished it; a full bucket
// starts a non-blocking all-reduce (MPI_Iallreduce) while the backward goes on; at the end of the
// backward the all-reduces are waited for and every gradient becomes the mean over ranks. Buckets
// start in the same order on every rank whatever order their gradients finish in.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

#include "../layers/module.hpp"

namespace tg::distributed {

class DistributedDataParallelOptions {
 public:
  // Bucket size in megabytes (PyTorch's default 25).
  DistributedDataParallelOptions& bucket_cap_mb(double mb) { bucket_cap_mb_ = mb; return *this; }
  // Parameters that get no gradient in some iteration (a branch not taken): after each forward
  // the graph is searched for them and their gradient counts as zero on this rank; one used on no
  // rank keeps its gradient untouched. Off, a parameter without a gradient is an error at the end
  // of backward that names it (as PyTorch's).
  DistributedDataParallelOptions& find_unused_parameters(bool on) { find_unused_ = on; return *this; }
  // Before each training-mode forward, rank 0's buffers (BatchNorm's running statistics) are
  // copied to every rank (PyTorch's default). Off: every rank keeps its own.
  DistributedDataParallelOptions& broadcast_buffers(bool on) { broadcast_buffers_ = on; return *this; }
  double bucket_cap_mb() const { return bucket_cap_mb_; }
  bool find_unused_parameters() const { return find_unused_; }
  bool broadcast_buffers() const { return broadcast_buffers_; }

 private:
  double bucket_cap_mb_ = 25;
  bool find_unused_ = false;
  bool broadcast_buffers_ = true;
};

// Time and traffic of the gradient all-reduces so far (this rank).
struct CommunicationStats {
  std::size_t steps = 0;          // backward passes that averaged gradients
  std::size_t buckets = 0;        // all-reduces started
  std::size_t bytes = 0;          // gradient bytes sent into them
  double wait_seconds = 0;        // time the end of backward waited for them (not overlapped)
};

class DistributedDataParallel : public nn::Module {
 public:
  // The module is registered as "module", so state_dict() keys read "module.<name>" as in PyTorch.
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DistributedDataParallelOptions options = {});
  // A module that lives elsewhere (it must outlive this wrapper), or one moved in.
  explicit DistributedDataParallel(nn::Module& module, DistributedDataParallelOptions options = {})
      : DistributedDataParallel(std::shared_ptr<nn::Module>(&module, [](nn::Module*) {}), options) {}
  template <class M>
    requires std::is_base_of_v<nn::Module, std::decay_t<M>> && (!std::is_lvalue_reference_v<M>) &&
             (!std::is_same_v<std::decay_t<M>, DistributedDataParallel>)
  explicit DistributedDataParallel(M&& module, DistributedDataParallelOptions options = {})
      : DistributedDataParallel(std::shared_ptr<nn::Module>(std::make_shared<std::decay_t<M>>(std::forward<M>(module))),
                                options) {}
  ~DistributedDataParallel() override;
  // The hooks point at this object: it stays where it was built.
  DistributedDataParallel(DistributedDataParallel&&) = delete;
  DistributedDataParallel& operator=(DistributedDataParallel&&) = delete;

  Tensor forward(const Tensor& input) override;
  nn::Module& module() const { return *module_; }

  // For a module with another forward signature: call before_forward(), then its forward, then
  // after_forward(output) with the output the loss is computed from.
  void before_forward();
  void after_forward(const Tensor& output);

  // RAII: while one lives, backward passes only accumulate gradients on this rank (gradient
  // accumulation); the first backward after it averages everything accumulated.
  class NoSync {
   public:
    explicit NoSync(DistributedDataParallel& ddp);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  NoSync no_sync() { return NoSync(*this); }

  const DistributedDataParallelOptions& options() const { return options_; }
  const CommunicationStats& stats() const;
  std::size_t bucket_count() const;

 private:
  struct State;
  void on_gradient_ready(std::size_t parameter);
  void finish_backward();

  std::shared_ptr<nn::Module> module_;
  DistributedDataParallelOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace tg::distributed
