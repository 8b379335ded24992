// spirals: three interleaved spirals, an MLP with BatchNorm1d, and a PNG of the decision
// boundary with the data points drawn over it.
#include <cmath>
#include <numbers>

#include <stb_image_write.h>

#include "common.hpp"

namespace nn = tg::nn;

namespace {

// `per_class` points on each of `classes` spiral arms, with Gaussian noise on the angle.
tg::data::TensorDataset make_spirals(std::size_t per_class, std::size_t classes, double noise) {
  std::vector<float> points;
  std::vector<std::int64_t> labels;
  for (std::size_t k = 0; k < classes; ++k)
    for (std::size_t i = 0; i < per_class; ++i) {
      const double r = double(i + 1) / double(per_class);
      const double t = 4.0 * (double(k) + r) + noise * tg::random::normal();
      points.push_back(float(r * std::sin(t)));
      points.push_back(float(r * std::cos(t)));
      labels.push_back(std::int64_t(k));
    }
  const std::size_t n = per_class * classes;
  return {tg::Tensor(points, {n, 2}), tg::Tensor(labels, {n})};
}

// Colours each pixel of a size×size image of [-1.1, 1.1]² by the predicted class, then draws the
// points in darker colours.
void write_png(const std::string& path, nn::Module& model, const tg::data::TensorDataset& data, int size) {
  const unsigned char light[3][3] = {{255, 200, 200}, {200, 255, 200}, {200, 200, 255}};
  const unsigned char dark[3][3] = {{200, 0, 0}, {0, 140, 0}, {0, 0, 200}};
  auto to_pixel = [size](double v) { return int((v + 1.1) / 2.2 * size); };
  std::vector<float> grid;
  for (int row = 0; row < size; ++row)
    for (int col = 0; col < size; ++col) {
      grid.push_back(float(-1.1 + 2.2 * (col + 0.5) / size));
      grid.push_back(float(1.1 - 2.2 * (row + 0.5) / size));
    }
  const tg::Tensor classes = examples::predict(model, tg::Tensor(grid, {std::size_t(size * size), 2}));
  std::vector<unsigned char> image(std::size_t(size * size * 3));
  for (int p = 0; p < size * size; ++p)
    for (int c = 0; c < 3; ++c) image[std::size_t(p * 3 + c)] = light[classes.data<std::int64_t>()[p]][c];
  const float* xy = data.inputs().data<float>();  // (N, 2) row-major
  const std::int64_t* targets = data.targets().data<std::int64_t>();
  for (std::size_t i = 0; i < data.size(); ++i) {
    const int col = to_pixel(xy[2 * i]), row = to_pixel(-xy[2 * i + 1]);
    const std::int64_t k = targets[i];
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        if (row + dy >= 0 && row + dy < size && col + dx >= 0 && col + dx < size && dx * dx + dy * dy <= 5)
          for (int c = 0; c < 3; ++c) image[std::size_t(((row + dy) * size + col + dx) * 3 + c)] = dark[k][c];
  }
  TG_CHECK(stbi_write_png(path.c_str(), size, size, 3, image.data(), size * 3) != 0, "spirals: cannot write ", path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spirals: an MLP with BatchNorm1d separates three spirals and draws its decision boundary"};
  examples::TrainOptions o;
  o.epochs = 40;
  o.batch_size = 32;
  o.lr = 0.01;
  std::string png = "spirals.png";
  examples::add_train_options(app, o);
  app.add_option("--png", png, "Where to write the picture of the decision boundary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  examples::apply(o);

  const tg::data::TensorDataset all = make_spirals(400, 3, 0.2);
  const auto split = tg::data::random_split(all, {960, 240});
  const tg::data::TensorDataset &train = split[0], &test = split[1];
  tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(o.batch_size).shuffle(true));

  nn::Sequential model(nn::Linear(2, 64), nn::BatchNorm1d(64), nn::ReLU(),
                       nn::Linear(64, 64), nn::BatchNorm1d(64), nn::ReLU(), nn::Linear(64, 3));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(o.lr));
  int start = o.resume.empty() ? 0 : examples::load_checkpoint(o.resume, model, optimizer, nullptr);
  examples::MetricsCsv metrics(o.metrics_csv, {"epoch", "loss", "train_accuracy", "test_accuracy"});

  double test_accuracy = 0;
  for (int epoch = start + 1; epoch <= o.epochs; ++epoch) {
    examples::Progress progress(epoch, o.epochs, loader.size());
    examples::train_epoch(model, optimizer, loader, progress,
                          [](const tg::Tensor& logits, const tg::Tensor& labels) { return tg::cross_entropy(logits, labels); });
    const double train_accuracy = examples::accuracy(model, train.inputs(), train.targets());
    test_accuracy = examples::accuracy(model, test.inputs(), test.targets());
    progress.finish("train " + examples::percent(train_accuracy) + "  test " + examples::percent(test_accuracy));
    metrics.row({double(epoch), progress.mean_loss(), train_accuracy, test_accuracy});
    if (!o.save.empty()) examples::save_checkpoint(o.save, model, optimizer, nullptr, epoch);
  }
  write_png(png, model, all, 400);
  std::printf("test accuracy %s\nwrote %s (decision boundary and data points)\n",
              examples::percent(test_accuracy).c_str(), png.c_str());
  return 0;
}
