// sequence: classify noisy waveforms by shape (sine or square) and frequency (slow or fast) with
// Conv1d → BatchNorm1d on (N, C, L) → ReLU → MaxPool1d → GRU → Linear. --bn picks BatchNorm1d's
// convention: PyTorch's (train()/eval(), momentum 0.1) or MindSpore's (set_train(), momentum 0.9 as
// the weight of the old statistic, inference mode by default). Both reach the same accuracy.
#include <cmath>
#include <numbers>

#include "common.hpp"

namespace nn = tg::nn;

namespace {

constexpr std::int64_t kLength = 64, kClasses = 4;

// n waveforms of kLength samples, class k: shape k / 2 (sine, square), frequency k % 2 (2 or 5
// periods), a random phase and amplitude, Gaussian noise of 0.4.
tg::data::TensorDataset waveforms(std::size_t n, tg::Generator generator) {
  std::vector<float> values(n * kLength);
  std::vector<std::int64_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = std::int64_t(generator.uniform() * kClasses) % kClasses;
    const double periods = k % 2 ? 5.0 : 2.0, phase = generator.uniform() * 2 * std::numbers::pi;
    const double amplitude = 0.5 + generator.uniform();
    for (std::int64_t t = 0; t < kLength; ++t) {
      const double s = std::sin(2 * std::numbers::pi * periods * double(t) / kLength + phase);
      const double clean = k / 2 ? (s >= 0 ? 1.0 : -1.0) : s;
      values[i * kLength + std::size_t(t)] = float(amplitude * clean + 0.4 * generator.normal());
    }
    labels[i] = k;
  }
  return {tg::Tensor(values, {n, 1, std::size_t(kLength)}), tg::Tensor(labels, {n})};
}

struct Classifier : nn::Module {
  explicit Classifier(const nn::BatchNorm1dOptions& bn_options) : bn_options(bn_options) {}
  nn::BatchNorm1dOptions bn_options;
  nn::Conv1d& conv = register_module("conv", nn::Conv1d(nn::Conv1dOptions(1, 16, 5).padding(nn::Padding::Same)));
  nn::BatchNorm1d& bn = register_module("bn", nn::BatchNorm1d(bn_options));  // on (N, 16, L)
  nn::MaxPool1d& pool = register_module("pool", nn::MaxPool1d(2));
  nn::GRU& gru = register_module("gru", nn::GRU(nn::GRUOptions(16, 32).batch_first(true)));
  nn::Linear& head = register_module("head", nn::Linear(32, kClasses));

  tg::Tensor forward(const tg::Tensor& x) override {
    const tg::Tensor features = pool(tg::relu(bn(conv(x))));        // (N, 16, L/2)
    auto [steps, last] = gru.forward(features.transpose(1, 2), {});  // (N, L/2, 32), (1, N, 32)
    return head(last.squeeze(0));
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sequence: classify noisy waveforms with Conv1d, BatchNorm1d and a GRU"};
  examples::TrainOptions o;
  o.epochs = 8;
  o.batch_size = 32;
  o.lr = 3e-3;
  std::string convention = "pytorch";
  examples::add_train_options(app, o);
  app.add_option("--bn", convention, "BatchNorm1d convention: pytorch or mindspore")
      ->check(CLI::IsMember({"pytorch", "mindspore"}))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  examples::apply(o);

  tg::Generator data_generator(o.seed + 1);
  const tg::data::TensorDataset train = waveforms(2000, data_generator), test = waveforms(500, data_generator);
  tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(o.batch_size).shuffle(true));

  const bool mindspore = convention == "mindspore";
  Classifier model(mindspore ? nn::BatchNorm1dOptions(nn::BatchNorm1dOptions::mindspore(16).momentum(0.9))
                             : nn::BatchNorm1dOptions(16).momentum(0.1));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  examples::MetricsCsv metrics(o.metrics_csv, {"epoch", "loss", "test_accuracy"});
  std::printf("BatchNorm1d convention: %s\n", convention.c_str());

  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    // A MindSpore Cell starts in inference mode: set_train() turns on batch statistics. (PyTorch's
    // train() is the same call under its own name.)
    if (mindspore) model.set_train(true);
    else model.train();
    examples::Progress progress(epoch, o.epochs, loader.size());
    examples::train_epoch(model, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    const double test_accuracy = examples::accuracy(model, test.inputs(), test.targets());  // in eval mode
    progress.finish("test " + examples::percent(test_accuracy));
    metrics.row({double(epoch), progress.mean_loss(), test_accuracy});
    if (!o.save.empty()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  std::printf("%s %s\n", mindspore ? "moving_mean[0..2]" : "running_mean[0..2]",
              [&] {
                const std::vector<float> m = model.bn.running_mean.to_vector<float>();
                char buffer[96];
                std::snprintf(buffer, sizeof buffer, "%.4f %.4f %.4f", m[0], m[1], m[2]);
                return std::string(buffer);
              }().c_str());
  std::printf("test accuracy %s\n", examples::percent(examples::accuracy(model, test.inputs(), test.targets())).c_str());
  return 0;
}
