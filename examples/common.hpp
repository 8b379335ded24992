// What every training example shares: its command-line options, a progress bar, a metrics CSV
// file, checkpoints (--save / --resume) and accuracy. The training loops stay in the examples.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace examples {

struct TrainOptions {
  int epochs = 10;
  std::size_t batch_size = 64;
  double lr = 1e-3;
  std::uint64_t seed = 0;
  int threads = 0;            // 0: all cores
  std::string metrics_csv;    // per-epoch metrics, when given
  std::string save;           // checkpoint written after every epoch
  std::string resume;         // checkpoint to continue from
};

// --epochs --batch-size --lr --seed --threads --metrics --save --resume, with `o` as defaults.
void add_train_options(CLI::App& app, TrainOptions& o);
// Seeds the generator and sets the thread count.
void apply(const TrainOptions& o);

// One epoch's progress: a bar with ETA redrawn in place on a terminal; nothing until the epoch's
// summary line when the output is a file or a pipe; nothing at all when quiet (the ranks of a
// distributed run other than 0).
class Progress {
 public:
  Progress(int epoch, int epochs, std::size_t steps, bool quiet = false);
  void step(double loss);
  double mean_loss() const { return steps_done_ ? loss_sum_ / double(steps_done_) : 0.0; }
  void set_mean_loss(double loss) { loss_sum_ = loss * double(steps_done_); }  // e.g. the mean over ranks
  // Prints "epoch  3/20  loss 0.1234  <summary>  (1.2 s)".
  void finish(const std::string& summary);

 private:
  int epoch_, epochs_;
  std::size_t steps_, steps_done_ = 0;
  double loss_sum_ = 0;
  bool terminal_, quiet_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Appends one row per epoch to a CSV file (a header first), when a path is given.
class MetricsCsv {
 public:
  MetricsCsv(const std::string& path, const std::vector<std::string>& columns);
  void row(const std::vector<double>& values);

 private:
  std::ofstream out_;
};

// One epoch: for every batch, zero_grad, forward, loss(output, target), backward, step, with the
// progress bar updated. Returns the mean loss.
template <class LossFn>
double train_epoch(tg::nn::Module& model, tg::optim::OptimizerBase& optimizer, tg::data::DataLoader& loader,
                   Progress& progress, LossFn&& loss_fn) {
  for (const tg::data::Batch& batch : loader) {
    optimizer.zero_grad();
    tg::Tensor loss = loss_fn(model(batch.input), batch.target);
    loss.backward();
    optimizer.step();
    progress.step(loss.item());
  }
  return progress.mean_loss();
}

// Everything a run depends on, in one safetensors file: the model, the optimizer, the scheduler
// (if any), the random generator's state and the number of finished epochs. A run resumed from it
// continues bit for bit as if it had never stopped.
void save_checkpoint(const std::string& path, const tg::nn::Module& model, const tg::optim::OptimizerBase& optimizer,
                     const tg::optim::Scheduler* scheduler, int epochs_done);
// Loads them back and returns the number of finished epochs.
int load_checkpoint(const std::string& path, tg::nn::Module& model, tg::optim::OptimizerBase& optimizer,
                    tg::optim::Scheduler* scheduler);

// Predicted classes (argmax of the logits) of a model in eval mode, without recording; the
// model's mode is restored.
tg::Tensor predict(tg::nn::Module& model, const tg::Tensor& inputs);
// Fraction of `labels` that predict() gets right, `batch_size` inputs at a time (0: all at once;
// a CNN's activations for 10,000 images at once would take gigabytes).
double accuracy(tg::nn::Module& model, const tg::Tensor& inputs, const tg::Tensor& labels, std::size_t batch_size = 0);

// --distributed: data-parallel training over the processes of `mpirun -np N` (tg::distributed;
// the examples have it when the build found MPI). Each process trains on its own share of every
// epoch (DistributedSampler; --batch-size is per process, as in PyTorch), the model is wrapped in
// DistributedDataParallel with its BatchNorm layers turned into SyncBatchNorm, the loss and
// accuracy printed are reduced over processes, and only rank 0 prints and writes files.
// Without the flag nothing changes.
class Parallel {
 public:
  explicit Parallel(CLI::App& app);  // adds --distributed
  ~Parallel();
  // After parsing: starts MPI, and one thread per process unless --threads says otherwise.
  void start(TrainOptions& o);
  bool on() const { return on_; }
  int rank() const;
  bool is_main() const { return rank() == 0; }
  // Loader options: this process's share in a new order each epoch, or shuffle(true).
  tg::data::DataLoaderOptions loader_options(std::size_t batch_size);
  void set_epoch(int epoch);  // reshuffles the shares (the same on every process)
  // The module to train: `model` itself, or a DistributedDataParallel around it.
  tg::nn::Module& wrap(tg::nn::Module& model);
  double mean(double value) const;  // over processes
  // accuracy() over the processes: each takes its slice of the inputs, the counts are summed.
  double accuracy(tg::nn::Module& model, const tg::Tensor& inputs, const tg::Tensor& labels,
                  std::size_t batch_size = 0) const;

 private:
  bool on_ = false;
  struct State;
  std::unique_ptr<State> state_;
};

// Where Debian's dataset-fashion-mnist puts Fashion-MNIST ("" when the package is not installed).
std::string fashion_mnist_dir();
// --data DIR (the four IDX files) and --limit N (the first N training and test images).
void add_mnist_options(CLI::App& app, std::string& dir, std::size_t& limit);
// The first `limit` examples of a dataset (all of them when limit is 0 or larger than it).
tg::data::TensorDataset first_examples(const tg::data::TensorDataset& data, std::size_t limit);

std::string percent(double fraction);  // "97.3%"

}  // namespace examples
