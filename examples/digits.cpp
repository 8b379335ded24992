// digits: the UCI handwritten digits (1,797 8x8 images, 10 classes) from scikit-learn's
// digits.csv.gz, an MLP with BatchNorm1d, and the confusion matrix of the test set.
#include <filesystem>

#include "common.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv) {
  CLI::App app{"digits: classify the UCI handwritten digits"};
  examples::TrainOptions o;
  o.epochs = 30;
  o.batch_size = 32;
  o.lr = 1e-3;
  std::string path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
  examples::add_train_options(app, o);
  app.add_option("--data", path, "digits.csv.gz (64 pixel columns 0..16, then the label)")->capture_default_str();
  examples::Parallel parallel(app);
  CLI11_PARSE(app, argc, argv);
  parallel.start(o);
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr,
                 "digits: %s not found.\nInstall it with `apt-get install python3-sklearn` (it ships "
                 "sklearn/datasets/data/digits.csv.gz), or pass its path with --data.\n",
                 path.c_str());
    return 1;
  }
  examples::apply(o);

  const tg::data::TensorDataset raw = tg::data::load_csv(path);
  const tg::data::TensorDataset all(raw.inputs() / 16.0, raw.targets());  // pixels to [0, 1]
  const std::size_t n_test = all.size() / 5;
  const auto split = tg::data::random_split(all, {all.size() - n_test, n_test});  // fixed 80/20 by --seed
  const tg::data::TensorDataset &train = split[0], &test = split[1];
  tg::data::DataLoader loader(train, parallel.loader_options(o.batch_size));

  nn::Sequential model(nn::Linear(64, 128), nn::BatchNorm1d(128), nn::ReLU(),
                       nn::Linear(128, 64), nn::BatchNorm1d(64), nn::ReLU(), nn::Linear(64, 10));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  tg::nn::Module& trained = parallel.wrap(model);  // the model, or DistributedDataParallel around it
  examples::MetricsCsv metrics(parallel.is_main() ? o.metrics_csv : "",
                               {"epoch", "loss", "train_accuracy", "test_accuracy"});

  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size(), !parallel.is_main());
    parallel.set_epoch(epoch);
    examples::train_epoch(trained, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    progress.set_mean_loss(parallel.mean(progress.mean_loss()));
    const double train_accuracy = parallel.accuracy(model, train.inputs(), train.targets());
    const double test_accuracy = parallel.accuracy(model, test.inputs(), test.targets());
    progress.finish("train " + examples::percent(train_accuracy) + "  test " + examples::percent(test_accuracy));
    metrics.row({double(epoch), progress.mean_loss(), train_accuracy, test_accuracy});
    if (!o.save.empty() && parallel.is_main()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  if (!parallel.is_main()) return 0;  // rank 0 reports

  // Rows: true digit; columns: predicted digit.
  const tg::Tensor predicted = examples::predict(model, test.inputs());
  std::vector<std::vector<int>> confusion(10, std::vector<int>(10, 0));
  const std::int64_t* truth = test.targets().data<std::int64_t>();
  const std::int64_t* guess = predicted.data<std::int64_t>();
  for (std::size_t i = 0; i < test.size(); ++i) ++confusion[std::size_t(truth[i])][std::size_t(guess[i])];
  std::printf("confusion matrix (rows: true digit, columns: predicted)\n     ");
  for (int c = 0; c < 10; ++c) std::printf("%4d", c);
  std::printf("\n");
  for (int r = 0; r < 10; ++r) {
    std::printf("%4d ", r);
    for (int c = 0; c < 10; ++c) std::printf("%4d", confusion[std::size_t(r)][std::size_t(c)]);
    std::printf("\n");
  }
  std::printf("test accuracy %s\n", examples::percent(examples::accuracy(model, test.inputs(), test.targets())).c_str());
  return 0;
}
