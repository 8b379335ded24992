#include "common.hpp"

#ifdef TAPEGRAD_HAS_MPI
#include "distributed/distributed.hpp"
#endif

#include <algorithm>
#include <filesystem>

#include <cstdio>
#include <unistd.h>

namespace examples {

void add_train_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--epochs", o.epochs, "Training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", o.batch_size, "Samples per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", o.lr, "Learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "Random seed: the same seed gives the same run")->capture_default_str();
  app.add_option("--threads", o.threads, "Threads (0: all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--metrics", o.metrics_csv, "Write per-epoch metrics to this CSV file");
  app.add_option("--save", o.save, "Save a checkpoint (safetensors) after every epoch");
  app.add_option("--resume", o.resume, "Continue from a checkpoint written by --save")->check(CLI::ExistingFile);
}

void apply(const TrainOptions& o) {
  tg::manual_seed(o.seed);
  if (o.threads > 0) tg::set_num_threads(o.threads);
}

Progress::Progress(int epoch, int epochs, std::size_t steps, bool quiet)
    : epoch_(epoch), epochs_(epochs), steps_(steps), terminal_(!quiet && isatty(fileno(stdout)) != 0), quiet_(quiet),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::step(double loss) {
  ++steps_done_;
  loss_sum_ += loss;
  if (!terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (steps_done_ != steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = elapsed / double(steps_done_) * double(steps_ - steps_done_);
  constexpr int kWidth = 30;
  const int filled = int(double(kWidth) * double(steps_done_) / double(steps_));
  std::printf("\repoch %3d/%d [%s%s] %zu/%zu  loss %.4f  ETA %.1f s ", epoch_, epochs_, std::string(filled, '#').c_str(),
              std::string(kWidth - filled, '.').c_str(), steps_done_, steps_, mean_loss(), eta);
  std::fflush(stdout);
}

void Progress::finish(const std::string& summary) {
  if (quiet_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (terminal_) std::printf("\r\033[K");  // clear the bar
  std::printf("epoch %3d/%d  loss %.4f  %s  (%.1f s)\n", epoch_, epochs_, mean_loss(), summary.c_str(), elapsed);
  std::fflush(stdout);
}

MetricsCsv::MetricsCsv(const std::string& path, const std::vector<std::string>& columns) {
  if (path.empty()) return;
  out_.open(path);
  TG_CHECK(out_.good(), "metrics: cannot write ", path);
  for (std::size_t i = 0; i < columns.size(); ++i) out_ << (i ? "," : "") << columns[i];
  out_ << '\n';
}

void MetricsCsv::row(const std::vector<double>& values) {
  if (!out_.is_open()) return;
  for (std::size_t i = 0; i < values.size(); ++i) out_ << (i ? "," : "") << values[i];
  out_ << '\n';
  out_.flush();
}

void save_checkpoint(const std::string& path, const tg::nn::Module& model, const tg::optim::OptimizerBase& optimizer,
                     const tg::optim::Scheduler* scheduler, int epochs_done) {
  tg::nn::StateDict state = tg::nn::with_prefix(model.state_dict(), "model.");
  tg::nn::merge_into(state, tg::nn::with_prefix(optimizer.state_dict(), "optimizer."));
  if (scheduler) tg::nn::merge_into(state, tg::nn::with_prefix(scheduler->state_dict(), "scheduler."));
  state.insert("rng_state", tg::get_rng_state());
  state.insert("epochs_done", tg::full({}, epochs_done, tg::kInt64));
  tg::save(state, path);
}

int load_checkpoint(const std::string& path, tg::nn::Module& model, tg::optim::OptimizerBase& optimizer,
                    tg::optim::Scheduler* scheduler) {
  const tg::nn::StateDict state = tg::load_state_dict(path);
  const tg::Tensor* epochs = state.find("epochs_done");
  const tg::Tensor* rng = state.find("rng_state");
  TG_CHECK(epochs != nullptr && rng != nullptr, "resume: ", path,
           " is not a checkpoint written by --save (no epochs_done or rng_state)");
  model.load_state_dict(tg::nn::under_prefix(state, "model."));
  optimizer.load_state_dict(tg::nn::under_prefix(state, "optimizer."));
  if (scheduler) scheduler->load_state_dict(tg::nn::under_prefix(state, "scheduler."));
  tg::set_rng_state(*rng);
  return int(epochs->item());
}

tg::Tensor predict(tg::nn::Module& model, const tg::Tensor& inputs) {
  const bool was_training = model.is_training();
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tensor classes = tg::argmax(model(inputs), 1);
  model.train(was_training);
  return classes;
}

double accuracy(tg::nn::Module& model, const tg::Tensor& inputs, const tg::Tensor& labels, std::size_t batch_size) {
  const std::size_t n = inputs.shape()[0];
  if (batch_size == 0 || batch_size >= n) return tg::mean(tg::eq(predict(model, inputs), labels).to(tg::kFloat64)).item();
  double right = 0;
  for (std::size_t start = 0; start < n; start += batch_size) {
    const auto length = std::int64_t(std::min(batch_size, n - start));
    const tg::Tensor predicted = predict(model, inputs.narrow(0, std::int64_t(start), length));
    right += tg::sum(tg::eq(predicted, labels.narrow(0, std::int64_t(start), length)).to(tg::kFloat64)).item();
  }
  return right / double(n);
}

std::string fashion_mnist_dir() {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  return std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz") ? dir : "";
}

void add_mnist_options(CLI::App& app, std::string& dir, std::size_t& limit) {
  app.add_option("--data", dir, "Directory with the four IDX files (default: Debian's dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--limit", limit, "Use only the first N training and N test images (0: all)");
}

tg::data::TensorDataset first_examples(const tg::data::TensorDataset& data, std::size_t limit) {
  if (limit == 0 || limit >= data.size()) return data;
  return {data.inputs().narrow(0, 0, std::int64_t(limit)), data.targets().narrow(0, 0, std::int64_t(limit))};
}

std::string percent(double fraction) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", 100.0 * fraction);
  return buffer;
}

}  // namespace examples

namespace examples {

#ifdef TAPEGRAD_HAS_MPI
struct Parallel::State {
  std::unique_ptr<tg::distributed::Session> session;
  std::shared_ptr<tg::data::DistributedSampler> sampler;
  std::unique_ptr<tg::distributed::DistributedDataParallel> ddp;
};
#else
struct Parallel::State {};
#endif

Parallel::Parallel(CLI::App& app) : state_(std::make_unique<State>()) {
  app.add_flag("--distributed", on_,
               "Data-parallel over the processes of mpirun -np N (DistributedDataParallel + SyncBatchNorm)");
}

Parallel::~Parallel() = default;

#ifdef TAPEGRAD_HAS_MPI
void Parallel::start(TrainOptions& o) {
  if (!on_) return;
  state_->session = std::make_unique<tg::distributed::Session>();
  if (o.threads == 0) o.threads = 1;  // the processes share the cores
}
int Parallel::rank() const { return on_ ? tg::distributed::rank() : 0; }

tg::data::DataLoaderOptions Parallel::loader_options(std::size_t batch_size) {
  if (!on_) return tg::data::DataLoaderOptions(batch_size).shuffle(true);
  state_->sampler = std::make_shared<tg::data::DistributedSampler>(std::size_t(tg::distributed::world_size()),
                                                                   std::size_t(tg::distributed::rank()));
  return tg::data::DataLoaderOptions(batch_size).sampler(state_->sampler);
}

void Parallel::set_epoch(int epoch) {
  if (state_->sampler) state_->sampler->set_epoch(std::uint64_t(epoch));
}

tg::nn::Module& Parallel::wrap(tg::nn::Module& model) {
  if (!on_) return model;
  tg::distributed::convert_sync_batchnorm(model);
  state_->ddp = std::make_unique<tg::distributed::DistributedDataParallel>(model);
  return *state_->ddp;
}

double Parallel::mean(double value) const {
  if (!on_) return value;
  tg::Tensor t = tg::full({1}, value, tg::kFloat64);
  tg::distributed::all_reduce(t, tg::distributed::ReduceOp::Mean);
  return t.item();
}

double Parallel::accuracy(tg::nn::Module& model, const tg::Tensor& inputs, const tg::Tensor& labels,
                          std::size_t batch_size) const {
  if (!on_) return examples::accuracy(model, inputs, labels, batch_size);
  const std::size_t n = inputs.shape()[0], world = std::size_t(tg::distributed::world_size());
  const std::size_t me = std::size_t(tg::distributed::rank());
  const std::size_t first = n * me / world, last = n * (me + 1) / world;
  double right = 0;
  if (last > first) {
    const auto length = std::int64_t(last - first);
    right = examples::accuracy(model, inputs.narrow(0, std::int64_t(first), length),
                               labels.narrow(0, std::int64_t(first), length), batch_size) *
            double(last - first);
  }
  tg::Tensor t = tg::full({1}, right, tg::kFloat64);
  tg::distributed::all_reduce(t);
  return t.item() / double(n);
}
#else
void Parallel::start(TrainOptions&) {
  if (on_) {
    std::fprintf(stderr, "--distributed: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then "
                         "configure again)\n");
    std::exit(1);
  }
}
int Parallel::rank() const { return 0; }
tg::data::DataLoaderOptions Parallel::loader_options(std::size_t batch_size) {
  return tg::data::DataLoaderOptions(batch_size).shuffle(true);
}
void Parallel::set_epoch(int) {}
tg::nn::Module& Parallel::wrap(tg::nn::Module& model) { return model; }
double Parallel::mean(double value) const { return value; }
double Parallel::accuracy(tg::nn::Module& model, const tg::Tensor& inputs, const tg::Tensor& labels,
                          std::size_t batch_size) const {
  return examples::accuracy(model, inputs, labels, batch_size);
}
#endif

}  // namespace examples
