// mnist: an MLP with BatchNorm1d on Fashion-MNIST (Debian's dataset-fashion-mnist, found by
// default) or on MNIST / Fashion-MNIST IDX files that you bring (--data DIR).
#include <cstdlib>

#include "common.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv) {
  CLI::App app{"mnist: classify MNIST or Fashion-MNIST from IDX files"};
  examples::TrainOptions o;
  o.epochs = 5;
  o.batch_size = 128;
  o.lr = 1e-3;
  std::string dir = examples::fashion_mnist_dir();
  std::size_t limit = 0;
  examples::add_train_options(app, o);
  examples::add_mnist_options(app, dir, limit);
  examples::Parallel parallel(app);
  CLI11_PARSE(app, argc, argv);
  parallel.start(o);

  auto load = [&](bool train_split) {
    try {
      return examples::first_examples(tg::data::load_mnist(dir, train_split), limit);
    } catch (const tg::Error& e) {
      std::fprintf(stderr,
                   "%s\nmnist needs train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                   "t10k-labels-idx1-ubyte (each may be .gz) in --data DIR, from MNIST or Fashion-MNIST "
                   "(apt-get install dataset-fashion-mnist puts Fashion-MNIST where mnist finds it by default).\n",
                   e.what());
      std::exit(1);
    }
  };
  const tg::data::TensorDataset train = load(true), test = load(false);
  examples::apply(o);
  tg::data::DataLoader loader(train, parallel.loader_options(o.batch_size));

  nn::Sequential model(nn::Linear(784, 256), nn::BatchNorm1d(256), nn::ReLU(),
                       nn::Linear(256, 128), nn::BatchNorm1d(128), nn::ReLU(), nn::Linear(128, 10));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  tg::nn::Module& trained = parallel.wrap(model);  // the model, or DistributedDataParallel around it
  examples::MetricsCsv metrics(parallel.is_main() ? o.metrics_csv : "", {"epoch", "loss", "test_accuracy"});

  double test_accuracy = -1;
  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size(), !parallel.is_main());
    parallel.set_epoch(epoch);
    examples::train_epoch(trained, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    progress.set_mean_loss(parallel.mean(progress.mean_loss()));
    test_accuracy = parallel.accuracy(model, test.inputs(), test.targets());
    progress.finish("test " + examples::percent(test_accuracy));
    metrics.row({double(epoch), progress.mean_loss(), test_accuracy});
    if (!o.save.empty() && parallel.is_main()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  if (test_accuracy < 0) test_accuracy = parallel.accuracy(model, test.inputs(), test.targets());  // no epoch ran
  if (parallel.is_main()) std::printf("test accuracy %s\n", examples::percent(test_accuracy).c_str());
  return 0;
}
