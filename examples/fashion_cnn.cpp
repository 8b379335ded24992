// fashion_cnn: a small CNN on Fashion-MNIST (Debian's dataset-fashion-mnist, found by default):
//   Conv2d(1→32, 3, pad 1)-BatchNorm2d-ReLU-MaxPool2 → Conv2d(32→64, 3, pad 1)-BatchNorm2d-ReLU-MaxPool2
//   → Linear(64·7·7→128)-BatchNorm1d-ReLU → Linear(128→10), Adam 1e-3, batches of 128.
// Prints each epoch's loss, test accuracy and time.
#include <cstdlib>

#include "common.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv) {
  CLI::App app{"fashion_cnn: a CNN on Fashion-MNIST"};
  examples::TrainOptions o;
  o.epochs = 3;
  o.batch_size = 128;
  o.lr = 1e-3;
  std::string dir = examples::fashion_mnist_dir();
  std::size_t limit = 0;
  examples::add_train_options(app, o);
  examples::add_mnist_options(app, dir, limit);
  CLI11_PARSE(app, argc, argv);
  if (dir.empty()) {
    std::fprintf(stderr, "fashion_cnn: no data. apt-get install dataset-fashion-mnist, or pass --data DIR with the "
                         "four Fashion-MNIST IDX files.\n");
    return 1;
  }

  // Images as (N, 1, 28, 28), normalised with Fashion-MNIST's mean and standard deviation (0.2860,
  // 0.3530), as PyTorch's transforms.Normalize in the usual pipeline.
  auto load = [&](bool train_split) {
    const tg::data::TensorDataset flat = examples::first_examples(tg::data::load_mnist(dir, train_split), limit);
    return tg::data::TensorDataset((flat.inputs().reshape({-1, 1, 28, 28}) - 0.2860) / 0.3530, flat.targets());
  };
  const tg::data::TensorDataset train = load(true), test = load(false);
  examples::apply(o);
  tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(o.batch_size).shuffle(true));

  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(32), nn::ReLU(),
                       nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::BatchNorm2d(64), nn::ReLU(),
                       nn::MaxPool2d(2),
                       nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::BatchNorm1d(128), nn::ReLU(),
                       nn::Linear(128, 10));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  examples::MetricsCsv metrics(o.metrics_csv, {"epoch", "loss", "test_accuracy"});

  // Evaluated in batches of the training size: the allocator's cached blocks fit them (batches of
  // 500 took fresh memory from the kernel every time: 12% of an epoch in page faults).
  constexpr std::size_t kEvalBatch = 128;
  double test_accuracy = -1;
  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size());
    examples::train_epoch(model, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    test_accuracy = examples::accuracy(model, test.inputs(), test.targets(), kEvalBatch);
    progress.finish("test " + examples::percent(test_accuracy));
    metrics.row({double(epoch), progress.mean_loss(), test_accuracy});
    if (!o.save.empty()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  if (test_accuracy < 0) test_accuracy = examples::accuracy(model, test.inputs(), test.targets(), kEvalBatch);
  std::printf("test accuracy %s\n", examples::percent(test_accuracy).c_str());
  return 0;
}
