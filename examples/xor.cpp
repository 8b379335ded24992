// xor: a small MLP learns XOR to 100% accuracy.
#include "common.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv) {
  CLI::App app{"xor: a 2-8-2 MLP learns XOR"};
  examples::TrainOptions o;
  o.epochs = 150;
  o.batch_size = 4;
  o.lr = 0.05;
  examples::add_train_options(app, o);
  CLI11_PARSE(app, argc, argv);
  examples::apply(o);

  const tg::Tensor x({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
  const tg::Tensor y(std::vector<std::int64_t>{0, 1, 1, 0}, {4});
  tg::data::DataLoader loader(tg::data::TensorDataset(x, y), tg::data::DataLoaderOptions(o.batch_size).shuffle(true));

  nn::Sequential model(nn::Linear(2, 8), nn::Tanh(), nn::Linear(8, 2));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  examples::MetricsCsv metrics(o.metrics_csv, {"epoch", "loss", "accuracy"});

  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size());
    examples::train_epoch(model, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    const double acc = examples::accuracy(model, x, y);
    progress.finish("accuracy " + examples::percent(acc));
    metrics.row({double(epoch), progress.mean_loss(), acc});
    if (!o.save.empty()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  std::printf("final accuracy %s\n", examples::percent(examples::accuracy(model, x, y)).c_str());
  return 0;
}
