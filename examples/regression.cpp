// regression: an MLP fits a noisy sine with the mean squared error and reports the test RMSE.
#include <cmath>

#include "common.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv) {
  CLI::App app{"regression: fit y = sin(x) + noise on [-3, 3]"};
  examples::TrainOptions o;
  o.epochs = 60;
  o.batch_size = 32;
  o.lr = 0.01;
  int anneal_epochs = 60;
  examples::add_train_options(app, o);
  app.add_option("--anneal-epochs", anneal_epochs,
                 "Epochs the cosine learning-rate schedule spans, whatever --epochs is, so that a run stopped "
                 "early and resumed follows one schedule")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  examples::apply(o);

  const std::size_t n = 1000;
  const tg::Tensor x = tg::rand({n, 1}) * 6.0 - 3.0;
  const tg::Tensor y = tg::sin(x) + 0.1 * tg::randn({n, 1});
  const auto split = tg::data::random_split(tg::data::TensorDataset(x, y), {800, 200});
  tg::data::DataLoader loader(split[0], tg::data::DataLoaderOptions(o.batch_size).shuffle(true));

  nn::Sequential model(nn::Linear(1, 64), nn::Tanh(), nn::Linear(64, 64), nn::Tanh(), nn::Linear(64, 1));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  tg::optim::CosineAnnealingLR schedule(optimizer, anneal_epochs);
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, &schedule);
  examples::MetricsCsv metrics(o.metrics_csv, {"epoch", "loss", "test_rmse"});

  auto test_rmse = [&] {
    tg::NoGradGuard no_grad;
    return std::sqrt(tg::mse_loss(model(split[1].inputs()), split[1].targets()).item());
  };
  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size());
    examples::train_epoch(model, optimizer, loader, progress,
                          [](const tg::Tensor& prediction, const tg::Tensor& target) { return tg::mse_loss(prediction, target); });
    schedule.step();
    const double rmse = test_rmse();
    progress.finish("test RMSE " + std::to_string(rmse));
    metrics.row({double(epoch), progress.mean_loss(), rmse});
    if (!o.save.empty()) examples::save_checkpoint(o.save, model, optimizer, &schedule, epoch);
  }
  std::printf("test RMSE %.4f (the noise alone is 0.1)\n", test_rmse());
  return 0;
}
