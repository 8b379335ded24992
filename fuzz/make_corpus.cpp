// Writes the seed corpora with tapegrad itself: valid files of each kind (and a few near misses),
// so the fuzzers start from inputs that reach deep into each loader.
//   make_corpus DIR  ->  DIR/safetensors, DIR/optimizer_state, DIR/csv, DIR/idx
#include <filesystem>
#include <fstream>

#include <tapegrad/tapegrad.hpp>

namespace fs = std::filesystem;
namespace nn = tg::nn;
namespace optim = tg::optim;

namespace {

void text(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string be32(std::uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  for (const char* kind : {"safetensors", "optimizer_state", "csv", "idx"}) fs::create_directories(dir / kind);
  tg::manual_seed(0);

  // Checkpoints: the harness's model (float32, float64, F16), a subset, and a mismatched one.
  nn::Sequential model(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2));
  tg::save(model, (dir / "safetensors" / "model.safetensors").string());
  tg::save(model, (dir / "safetensors" / "model_f16.safetensors").string(), {{"format", "pt"}}, tg::FloatFormat::F16);
  tg::save(model, (dir / "safetensors" / "model_bf16.safetensors").string(), {}, tg::FloatFormat::BF16);
  nn::Sequential other(nn::Linear(3, 5), nn::ReLU(), nn::Linear(5, 2));
  tg::save(other, (dir / "safetensors" / "other.safetensors").string());
  nn::StateDict odd;
  odd.insert("empty", tg::zeros({0, 3}));
  odd.insert("scalar", tg::full({}, 1.5, tg::kFloat64));
  odd.insert("ints", tg::arange(5, tg::kInt64));
  tg::save(odd, (dir / "safetensors" / "odd.safetensors").string());

  // Optimizer and scheduler states after a few steps, as the examples save them.
  tg::Tensor w = tg::ones({2, 3}).set_requires_grad(), b = tg::ones({2}).set_requires_grad();
  optim::Adam adam(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{w}}, {{b}, [](auto& o) { o.amsgrad(true); }}},
                   optim::AdamOptions(0.01));
  optim::SGD sgd({w, b}, optim::SGDOptions(0.1).momentum(0.9));
  optim::StepLR schedule(sgd, 2);
  for (int i = 0; i < 3; ++i) {
    tg::sum(w * w + b.reshape({2, 1})).backward();
    adam.step();
    sgd.step();
    schedule.step();
    adam.zero_grad();
  }
  for (auto [name, opt] : {std::pair<const char*, optim::OptimizerBase*>{"adam", &adam}, {"sgd", &sgd}}) {
    nn::StateDict state = nn::with_prefix(opt->state_dict(), "optimizer.");
    nn::merge_into(state, nn::with_prefix(schedule.state_dict(), "scheduler."));
    tg::save(state, (dir / "optimizer_state" / (std::string(name) + ".safetensors")).string());
  }

  // CSV: numbers with a label column, a header, odd spacing.
  text(dir / "csv" / "plain.csv", "1,2,0\n3.5,-4e2,1\n0.25,7,2\n");
  text(dir / "csv" / "header.csv", "y,a,b\n1,0.5,0.25\n0,1e-3,-2\n");
  text(dir / "csv" / "spaces.csv", " 1 , 2 , 3\n\n4,5,6\n");

  // IDX: three 2x2 images and their labels, and a truncated file.
  text(dir / "idx" / "images", be32(2051) + be32(3) + be32(2) + be32(2) + std::string("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0", 12));
  text(dir / "idx" / "labels", be32(2049) + be32(3) + std::string("\x01\x02\x03", 3));
  text(dir / "idx" / "truncated", be32(2051) + be32(1) + be32(2));
  std::printf("wrote the corpora under %s\n", dir.c_str());
  return 0;
}
