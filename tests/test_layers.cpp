// Module registry, mode, clone, state_dict, printing, and gradcheck of every layer through the
// module (input and every parameter).
#include <sstream>
#include "../core/xtensor.hpp"

#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;
using tg_test::uniform64;
namespace nn = tg::nn;
using Inputs = std::vector<Tensor>;

namespace {

// A model class as a user would write one.
struct Net : nn::Module {
  Net() : Module("Net") {
    encoder = register_module("encoder", std::make_shared<nn::Sequential>(nn::Linear(3, 4), nn::ReLU()));
    head = register_module("head", std::make_shared<nn::Linear>(4, 2));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.5));
  }
  Tensor forward(const Tensor& x) override { return head->forward(drop->forward(encoder->forward(x))); }
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Net>(); }
  std::shared_ptr<nn::Sequential> encoder;
  std::shared_ptr<nn::Linear> head;
  std::shared_ptr<nn::Dropout> drop;
};

using tg_test::check_module;

}  // namespace

TEST_CASE("named parameters and buffers use dotted PyTorch names") {
  Net net;
  CHECK(net.named_parameters().keys() ==
        std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "head.weight", "head.bias"});
  CHECK(net.parameters().size() == 4);
  CHECK(net.parameters(false).empty());
  CHECK(net.children().size() == 3);
  CHECK(net.modules().size() == 6);  // Net, Sequential, Linear, ReLU, Linear, Dropout
  CHECK(net.state_dict().keys() == net.named_parameters().keys());
  CHECK(net.encoder->at<nn::Linear>(0)->weight.same(net.named_parameters().at("encoder.0.weight")));
  CHECK_THROWS_WITH_AS(net.register_parameter("head", tg::zeros({1})), "Net: the name \"head\" is already registered",
                       tg::Error);
  CHECK_THROWS_WITH_AS(net.register_buffer("a.b", tg::zeros({1})), doctest::Contains("invalid buffer name \"a.b\""),
                       tg::Error);
}

TEST_CASE("train, eval and set_train recurse, chain, agree, and leave recording alone") {
  Net net;
  CHECK(net.is_training());
  CHECK(net.drop->is_training());
  CHECK_FALSE(net.eval().is_training());
  CHECK_FALSE(net.drop->is_training());
  CHECK_FALSE(net.encoder->at<nn::ReLU>(1)->is_training());
  net.set_train();
  CHECK(net.drop->is_training());
  net.set_train(false);
  CHECK_FALSE(net.head->is_training());
  net.train(true).eval();
  CHECK_FALSE(net.is_training());
  CHECK(tg::GradMode::is_enabled());
  CHECK(net.forward(tg::randn({2, 3})).requires_grad());  // eval still records
}

TEST_CASE("Dropout is active only in training mode, with inverted scaling") {
  tg::manual_seed(3);
  nn::Dropout drop(0.25);
  const Tensor x = tg::ones({4000});
  const Tensor y = drop(x);
  const auto& v = y.values<float>();
  std::size_t zeros = 0;
  for (float value : v) {
    CHECK((value == 0.0f || std::abs(value - 1.0f / 0.75f) < 1e-6f));
    zeros += value == 0.0f;
  }
  CHECK(std::abs(double(zeros) / 4000.0 - 0.25) < 0.03);
  drop.eval();
  CHECK(tg_test::bitwise_equal(drop(x), x));
  CHECK_THROWS_WITH_AS(nn::Dropout(1.5), "Dropout: p must be in [0, 1], got 1.5", tg::Error);
}

// The mask comes from Philox keyed by one draw of the generator: every p and size (tails of 1-3
// values past a multiple of 4 included), both dtypes; the dropped fraction within 4 standard
// deviations of p; a new mask per call, the same one again after the same seed and for any thread
// count; p = 1 drops everything.
TEST_CASE("dropout masks: every p and size, both dtypes, reproducible for any thread count") {
  const int threads = tg::get_num_threads();
  for (double p : {0.05, 0.25, 0.5, 0.9, 1.0})
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 64, 4099, 40003})
      for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        INFO("p ", p, " n ", n, " ", tg::dtype_name(dtype));
        const Tensor x = tg::ones({n}, dtype);
        tg::manual_seed(11);
        tg::set_num_threads(1);
        const Tensor one_thread = tg::dropout(x, p, true);
        const Tensor next_call = tg::dropout(x, p, true);
        tg::manual_seed(11);
        tg::set_num_threads(2);
        const Tensor two_threads = tg::dropout(x, p, true);
        CHECK(tg_test::bitwise_equal(one_thread, two_threads));
        const std::vector<double> v = tg_test::flat(one_thread), w = tg_test::flat(next_call);
        const double kept_value = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
        std::size_t dropped = 0, differ = 0;
        for (std::size_t i = 0; i < n; ++i) {
          CHECK((v[i] == 0.0 || std::abs(v[i] - kept_value) <= 1e-6 * kept_value));
          dropped += v[i] == 0.0;
          differ += (v[i] == 0.0) != (w[i] == 0.0);
        }
        if (p == 1.0) CHECK(dropped == n);
        if (n >= 4099 && p < 1.0) {
          CHECK(std::abs(double(dropped) - p * double(n)) <= 4 * std::sqrt(double(n) * p * (1 - p)));
          CHECK(differ > 0);  // a new mask for every call
        }
      }
  tg::set_num_threads(threads);
}

// Channel dropout: every (sample, channel) is all zeros or all 1/(1-p) times the input, the
// dropped fraction near p, the gradient the same mask; batched and unbatched ranks; eval and p = 0
// the identity; the same bits for the same seed at 1 and 2 threads; errors.
TEST_CASE("Dropout1d, Dropout2d, Dropout3d drop whole channels") {
  struct Form {
    const char* name;
    std::function<Tensor(const Tensor&, double, bool)> op;
    tg::Shape shape;
    std::size_t channel_dims;  // 2: (N, C) masks, 1: unbatched (C)
  };
  const std::vector<Form> forms{
      {"dropout1d", [](const Tensor& x, double p, bool t) { return tg::dropout1d(x, p, t); }, {40, 50, 7}, 2},
      {"dropout1d unbatched", [](const Tensor& x, double p, bool t) { return tg::dropout1d(x, p, t); }, {500, 9}, 1},
      {"dropout2d", [](const Tensor& x, double p, bool t) { return tg::dropout2d(x, p, t); }, {40, 50, 3, 4}, 2},
      {"dropout2d 3-d", [](const Tensor& x, double p, bool t) { return tg::dropout2d(x, p, t); }, {40, 50, 6}, 2},
      {"dropout3d", [](const Tensor& x, double p, bool t) { return tg::dropout3d(x, p, t); }, {40, 50, 2, 2, 3}, 2},
      {"dropout3d unbatched", [](const Tensor& x, double p, bool t) { return tg::dropout3d(x, p, t); }, {500, 2, 3, 2}, 1}};
  for (const Form& f : forms)
    for (double p : {0.25, 0.6}) {
      INFO(f.name, " p ", p);
      tg::manual_seed(12);
      const Tensor x = (tg::rand(f.shape) + 0.5).set_requires_grad();
      const Tensor y = f.op(x, p, true);
      y.backward(tg::ones(f.shape));
      const std::vector<double> xs = tg_test::flat(x), ys = tg_test::flat(y), dx = tg_test::flat(x.grad());
      std::size_t channels = 1;
      for (std::size_t i = 0; i < f.channel_dims; ++i) channels *= f.shape[i];
      const std::size_t run = xs.size() / channels;
      std::size_t dropped = 0, wrong = 0;
      for (std::size_t c = 0; c < channels; ++c) {
        const bool zero = ys[c * run] == 0.0;
        dropped += zero;
        for (std::size_t i = c * run; i < (c + 1) * run; ++i) {
          const double scale = zero ? 0.0 : 1.0 / (1.0 - p);
          wrong += std::abs(ys[i] - xs[i] * scale) > 1e-6 * (1 + std::abs(ys[i])) || std::abs(dx[i] - scale) > 1e-6;
        }
      }
      CHECK(wrong == 0);
      CHECK(std::abs(double(dropped) - p * double(channels)) <= 4 * std::sqrt(double(channels) * p * (1 - p)));
      CHECK(tg_test::bitwise_equal(f.op(x, p, false), x));
      CHECK(tg_test::bitwise_equal(f.op(x, 0.0, true), x));
      std::vector<Tensor> runs;
      for (int threads : {1, 2}) {
        tg::set_num_threads(threads);
        tg::manual_seed(13);
        runs.push_back(f.op(x.detach(), p, true));
      }
      tg::set_num_threads(1);
      CHECK(tg_test::bitwise_equal(runs[0], runs[1]));
    }
  tg::manual_seed(14);
  nn::Dropout2d layer(0.5);
  const Tensor x = tg::ones({8, 16, 2, 2});
  CHECK_FALSE(tg_test::bitwise_equal(layer(x), x));
  layer.eval();
  CHECK(tg_test::bitwise_equal(layer(x), x));
  std::ostringstream printed;
  printed << nn::Dropout1d(0.1) << nn::Dropout2d() << nn::Dropout3d(0.3);
  CHECK(printed.str() == "Dropout1d(p=0.1)Dropout2d(p=0.5)Dropout3d(p=0.3)");
  CHECK_THROWS_WITH_AS(nn::Dropout2d(-0.1), "Dropout2d: p must be in [0, 1], got -0.1", tg::Error);
  CHECK_THROWS_WITH_AS(tg::dropout1d(tg::ones({2, 3, 4, 5})),
                       "dropout1d: expected (N, C, L) or unbatched (C, L), got [2, 3, 4, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::dropout2d(tg::ones({2, 3})),
                       "dropout2d: expected (N, C, H, W), or (N, C, L) as PyTorch 1.13 reads a 3-d input, got [2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::dropout3d(tg::ones({2, 3, 4}), 2.0),
                       "dropout3d: expected (N, C, D, H, W) or unbatched (C, D, H, W), got [2, 3, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::dropout3d(tg::ones({2, 3, 4, 5}), 2.0), "dropout3d: probability must be in [0, 1], got 2",
                       tg::Error);
}

TEST_CASE("Linear has PyTorch's default initialisation and checks its input") {
  tg::manual_seed(0);
  nn::Linear fc(100, 30);
  CHECK(fc.weight.shape() == tg::Shape{30, 100});
  const double bound = 1.0 / std::sqrt(100.0);
  CHECK(xt::amax(xt::abs(fc.weight.values<float>()))() <= bound);
  CHECK(xt::amax(xt::abs(fc.weight.values<float>()))() > 0.9 * bound);  // the whole range is used
  CHECK(xt::amax(xt::abs(fc.bias.values<float>()))() <= bound);
  CHECK(fc(tg::randn({5, 100})).shape() == tg::Shape{5, 30});
  CHECK(fc(tg::randn({2, 5, 100})).shape() == tg::Shape{2, 5, 30});
  CHECK_THROWS_WITH_AS(fc(tg::randn({5, 99})), "Linear: expected input with last dim 100 (in_features), got [5, 99]",
                       tg::Error);
  CHECK(nn::Linear(nn::LinearOptions(3, 2).bias(false)).parameters().size() == 1);
  CHECK_THROWS_WITH_AS(nn::Linear(0, 2), "Linear: in_features and out_features must be positive, got 0 and 2",
                       tg::Error);
}

TEST_CASE("gradcheck of every layer, for the input and every parameter") {
  tg::manual_seed(11);
  SUBCASE("Linear") { nn::Linear m(3, 2); check_module(m, uniform64({4, 3})); }
  SUBCASE("Linear 3-D input") { nn::Linear m(3, 2); check_module(m, uniform64({2, 2, 3})); }
  SUBCASE("Linear without bias") { nn::Linear m(3, 2, false); check_module(m, uniform64({4, 3})); }
  SUBCASE("LayerNorm") {
    nn::LayerNorm m(nn::LayerNormOptions({4}));
    tg::nn::init::uniform_(m.weight, 0.5, 1.5);
    tg::nn::init::uniform_(m.bias, -0.5, 0.5);
    check_module(m, uniform64({3, 4}));
  }
  SUBCASE("LayerNorm over 2 dims, no affine") {
    nn::LayerNorm m(nn::LayerNormOptions({2, 3}).elementwise_affine(false));
    check_module(m, uniform64({2, 2, 3}));
  }
  SUBCASE("Sequential MLP") {
    nn::Sequential m(nn::Linear(3, 5), nn::Tanh(), nn::Linear(5, 2), nn::Sigmoid());
    check_module(m, uniform64({4, 3}));
  }
  SUBCASE("activations") {
    nn::Sequential m(nn::Linear(3, 6), nn::GELU(), nn::Linear(6, 6), nn::LeakyReLU(0.2), nn::Linear(6, 4),
                     nn::Softmax(1));
    check_module(m, uniform64({3, 3}));
    nn::Sequential n(nn::Linear(3, 4), nn::GELU("tanh"), nn::LogSoftmax(-1));
    check_module(n, uniform64({2, 3}));
  }
  SUBCASE("ReLU, Flatten, Identity") {
    nn::Sequential m(nn::Flatten(), nn::Linear(6, 4), nn::ReLU(), nn::Identity());
    check_module(m, uniform64({3, 2, 3}));
  }
  SUBCASE("Dropout in eval mode") {
    nn::Sequential m(nn::Linear(3, 4), nn::Dropout(0.5));
    m.eval();
    check_module(m, uniform64({2, 3}));
  }
}

TEST_CASE("to(dtype) converts parameters in place and layers keep working") {
  nn::Linear fc(3, 2);
  const Tensor w = fc.weight;
  fc.to(tg::kFloat64);
  CHECK(w.dtype() == tg::kFloat64);  // the same handle sees the change
  CHECK(fc(tg::randn({1, 3}, tg::kFloat64)).dtype() == tg::kFloat64);
  CHECK(fc.weight.requires_grad());
}

TEST_CASE("zero_grad clears every gradient") {
  Net net;
  tg::sum(net(tg::randn({2, 3}))).backward();
  CHECK(net.head->weight.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("clone is deep: same values and mode, independent tensors") {
  tg::manual_seed(5);
  Net net;
  net.eval();
  auto copy = std::dynamic_pointer_cast<Net>(net.clone());
  REQUIRE(copy != nullptr);
  CHECK_FALSE(copy->is_training());
  const Tensor x = tg::randn({3, 3});
  CHECK(tg_test::bitwise_equal(net(x), copy->forward(x)));
  {
    tg::NoGradGuard no_grad;
    copy->head->weight.values_mut<float>().fill(0.0f);
  }
  CHECK_FALSE(tg_test::bitwise_equal(net(x), copy->forward(x)));
  CHECK(copy->encoder->at<nn::Linear>(0)->weight.requires_grad());
  CHECK_FALSE(copy->head->weight.same(net.head->weight));
  // A model moved to float64 clones as float64 (the rebuilt float32 tensors take the original's
  // storage; clone() had refused it).
  net.to(tg::kFloat64);
  auto wide = std::dynamic_pointer_cast<Net>(net.clone());
  CHECK(wide->head->weight.dtype() == tg::kFloat64);
  const Tensor x64 = x.to(tg::kFloat64);
  CHECK(tg_test::bitwise_equal(net(x64), wide->forward(x64)));
}

TEST_CASE("state_dict round trip and a failed load leaves the module unchanged") {
  tg::manual_seed(1);
  Net a;
  tg::manual_seed(2);
  Net b;
  const Tensor x = tg::randn({2, 3});
  a.eval();
  b.eval();
  CHECK_FALSE(tg_test::bitwise_equal(a(x), b(x)));
  b.load_state_dict(a.state_dict());
  CHECK(tg_test::bitwise_equal(a(x), b(x)));

  tg::manual_seed(3);
  Net c;
  c.eval();
  const Tensor before = c(x);
  nn::StateDict bad;
  for (const auto& [key, value] : a.state_dict()) {
    if (key == "head.bias") continue;
    bad.insert(key, key == "head.weight" ? tg::zeros({3, 4}) : value);
  }
  bad.insert("extra", tg::zeros({1}));
  CHECK_THROWS_WITH_AS(c.load_state_dict(bad),
                       "Net: error loading state_dict: missing keys [head.bias]; unexpected keys [extra]; mismatched "
                       "keys [head.weight: expected float32 [2, 4], got float32 [3, 4]];",
                       tg::Error);
  CHECK(tg_test::bitwise_equal(c(x), before));  // nothing changed
  nn::StateDict wrong_dtype;
  for (const auto& [key, value] : a.state_dict()) wrong_dtype.insert(key, value.to(tg::kFloat64));
  CHECK_THROWS_WITH_AS(c.load_state_dict(wrong_dtype), doctest::Contains("expected float32 [4, 3], got float64 [4, 3]"),
                       tg::Error);
  CHECK(tg_test::bitwise_equal(c(x), before));
}

TEST_CASE("printing shows the tree with each layer's options") {
  nn::Sequential model(nn::Linear(2, 16), nn::ReLU(), nn::Dropout(0.1),
                       nn::LayerNorm(nn::LayerNormOptions({16})), nn::Linear(16, 1, false));
  std::ostringstream out;
  out << model;
  CHECK(out.str() ==
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=16, bias=true)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.1)\n"
        "  (3): LayerNorm((16,), eps=1e-05, elementwise_affine=true)\n"
        "  (4): Linear(in_features=16, out_features=1, bias=false)\n"
        ")");
  CHECK_THROWS_WITH_AS(model[7], "Sequential: index 7 is out of range for 5 modules", tg::Error);
  CHECK_THROWS_WITH_AS(model.at<nn::Linear>(1), "Sequential: child 1 is a ReLU, not the requested type", tg::Error);
}

TEST_CASE("LayerNorm checks its input shape") {
  nn::LayerNorm norm(nn::LayerNormOptions({4}));
  CHECK_THROWS_WITH_AS(norm(tg::zeros({2, 3})), "LayerNorm: expected input with trailing dims [4], got [2, 3]", tg::Error);
}

TEST_CASE("init functions follow PyTorch's fans and gains") {
  tg::manual_seed(9);
  Tensor w = tg::empty({200, 100});
  CHECK(nn::init::calculate_fan_in_and_fan_out(w) == std::pair<double, double>{100, 200});
  CHECK(nn::init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  nn::init::xavier_uniform_(w);
  const double a = std::sqrt(6.0 / 300.0);
  CHECK(xt::amax(xt::abs(w.values<float>()))() <= a);
  nn::init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  CHECK(std::sqrt(tg::var(w).item()) == doctest::Approx(std::sqrt(2.0 / 200.0)).epsilon(0.05));
  nn::init::xavier_normal_(w, 2.0);
  CHECK(std::sqrt(tg::var(w).item()) == doctest::Approx(2.0 * std::sqrt(2.0 / 300.0)).epsilon(0.05));
  nn::init::kaiming_uniform_(w);
  CHECK(xt::amax(xt::abs(w.values<float>()))() <= std::sqrt(2.0) * std::sqrt(3.0 / 100.0));
  nn::init::constant_(w, 0.5);
  CHECK(tg::sum(w).item() == doctest::Approx(10000.0));
  CHECK_THROWS_WITH_AS(nn::init::kaiming_uniform_(w, 0, "fan_avg"),
                       "kaiming_uniform_: mode must be \"fan_in\" or \"fan_out\", got \"fan_avg\"", tg::Error);
  Tensor v = tg::empty({3});
  CHECK_THROWS_WITH_AS(nn::init::xavier_uniform_(v), doctest::Contains("at least 2 dims, got [3]"), tg::Error);
}

// ---- models of your own ---------------------------------------------------------------------------

namespace {

struct Block : nn::Module {
  explicit Block(std::int64_t width = 4) : width(width) {}
  std::int64_t width;
  nn::Linear& fc = register_module("fc", nn::Linear(width, width));
  nn::BatchNorm1d& bn = register_module("bn", nn::BatchNorm1d(width));
  Tensor forward(const Tensor& x) override { return tg::relu(x + bn(fc(x))); }
};

struct TwoInputs : nn::Module {  // several inputs and outputs: its own forward, called by name
  nn::Linear& left = register_module("left", nn::Linear(3, 2));
  nn::Linear& right = register_module("right", nn::Linear(5, 2));
  std::pair<Tensor, Tensor> forward(const Tensor& a, const Tensor& b) {
    const Tensor l = left(a), r = right(b);
    return {l + r, l - r};
  }
};

struct Custom : nn::Module {
  nn::Linear& input = register_module("input", nn::Linear(3, 4));
  Block& block = register_module("block", Block(4));
  TwoInputs& pair = register_module("pair", TwoInputs());
  Tensor gain = register_parameter("gain", tg::ones({1}));
  Tensor steps = register_buffer("steps", tg::zeros({1}, tg::kInt64));
  Tensor forward(const Tensor& x) override {
    const auto [sum, diff] = pair.forward(x, tg::ones({x.shape()[0], 5}, x.dtype()));
    return block(input(x)) * gain + tg::sum(sum * diff);
  }
};

}  // namespace

TEST_CASE("a model of your own: one-line registration, natural calls, keys, printing, to, clone") {
  Custom net;
  CHECK(net.type_name() == "Custom");
  CHECK(net.named_parameters().keys() ==
        std::vector<std::string>{"gain", "input.weight", "input.bias", "block.fc.weight", "block.fc.bias",
                                 "block.bn.weight", "block.bn.bias", "pair.left.weight", "pair.left.bias",
                                 "pair.right.weight", "pair.right.bias"});
  CHECK(net.state_dict().contains("block.bn.running_mean"));
  CHECK(net.state_dict().contains("steps"));
  std::ostringstream printed;
  printed << net;
  CHECK(printed.str().find("Custom(\n  (input): Linear(in_features=3") == 0);
  CHECK(printed.str().find("(block): Block(\n    (fc): Linear") != std::string::npos);
  CHECK(printed.str().find("(pair): TwoInputs(") != std::string::npos);

  const Tensor x = tg::randn({6, 3});
  tg::sum(net(x)).backward();
  CHECK(net.block.fc.weight.grad().defined());
  CHECK(net.pair.right.weight.grad().defined());

  // clone: its own type, the same values and mode, independent tensors.
  net.eval();
  std::shared_ptr<Custom> copy = nn::clone(net);
  CHECK_FALSE(copy->is_training());
  CHECK(tg_test::bitwise_equal(copy->block.fc.weight, net.block.fc.weight));
  CHECK(tg_test::bitwise_equal((*copy)(x), net(x)));
  {
    tg::NoGradGuard no_grad;
    copy->block.fc.weight.values_mut<float>().fill(0.0f);
  }
  CHECK_FALSE(tg_test::bitwise_equal(copy->block.fc.weight, net.block.fc.weight));
  // The member clone() works for the children (rebuilt with their default constructors) ...
  CHECK(net.named_children().at("block")->clone()->type_name() == "Block");
  // ... and tells a top-level model of your own to use tg::nn::clone.
  CHECK_THROWS_WITH_AS(net.clone(), doctest::Contains("Custom: clone() cannot rebuild this module by itself: use "
                                                      "tg::nn::clone(module)"),
                       tg::Error);
  // A child whose default construction differs from the original is refused, not copied wrongly.
  struct Wide : nn::Module {
    Block& block = register_module("block", Block(6));
  };
  Wide wide;
  CHECK_THROWS_WITH_AS(wide.named_children().at("block")->clone(),
                       doctest::Contains("Linear: clone() rebuilt \"weight\" as float32 [4, 4] but the original is "
                                         "float32 [6, 6]"),
                       tg::Error);

  // to() reaches every level; state_dict round-trips into a new instance.
  net.to(tg::kFloat64);
  CHECK(net.pair.left.weight.dtype() == tg::kFloat64);
  CHECK(net.block.bn.running_var.dtype() == tg::kFloat64);
  Custom other;
  other.to(tg::kFloat64);
  other.load_state_dict(net.state_dict());
  other.eval();
  CHECK(tg_test::bitwise_equal(other(x.to(tg::kFloat64)), net(x.to(tg::kFloat64))));
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return other(in[0]); }, {tg_test::uniform64({3, 3})});
}

namespace {

// PyTorch's idioms for a model that calls its own submodules: a ModuleList of blocks looped over,
// a ModuleDict of heads picked by name.
struct Tower : nn::Module {
  nn::ModuleList& blocks = register_module("blocks", nn::ModuleList());
  nn::ModuleDict& heads = register_module("heads", nn::ModuleDict());
  Tower() {
    for (int i = 0; i < 3; ++i) blocks.push_back(nn::Linear(4, 4));
    heads.insert("digits", nn::Linear(4, 10));
    heads.insert("parity", nn::Sequential(nn::Linear(4, 2), nn::LogSoftmax(1)));
  }
  Tensor forward(const Tensor& x) override { return run(x, "digits"); }
  Tensor run(const Tensor& x, const std::string& head) {
    Tensor h = x;
    for (const auto& [name, block] : blocks) h = tg::relu(block->forward(h)) + h;
    return heads[head]->forward(h);
  }
};

}  // namespace

TEST_CASE("ModuleList and ModuleDict: PyTorch's keys, printing, clone, load, and errors") {
  tg::manual_seed(41);
  Tower net;
  CHECK(net.named_parameters().keys() ==
        std::vector<std::string>{"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                                 "blocks.2.weight", "blocks.2.bias", "heads.digits.weight", "heads.digits.bias",
                                 "heads.parity.0.weight", "heads.parity.0.bias"});
  CHECK(net.blocks.size() == 3);
  CHECK(net.heads.size() == 2);
  CHECK(net.heads.keys() == std::vector<std::string>{"digits", "parity"});
  CHECK(net.heads.contains("parity"));
  CHECK_FALSE(net.heads.contains("colour"));
  CHECK(net.blocks.at<nn::Linear>(1)->weight.shape() == tg::Shape{4, 4});
  CHECK(net.heads.at<nn::Linear>("digits")->weight.shape() == tg::Shape{10, 4});

  const Tensor x = tg::randn({5, 4});
  Tensor h = x;
  for (std::size_t i = 0; i < 3; ++i) h = tg::relu(net.blocks.at<nn::Linear>(i)->forward(h)) + h;
  CHECK(tg_test::bitwise_equal(net(x), net.heads.at<nn::Linear>("digits")->forward(h)));
  CHECK(net.run(x, "parity").shape() == tg::Shape{5, 2});
  tg::sum(net(x)).backward();
  CHECK(net.blocks.at<nn::Linear>(0)->weight.grad().defined());
  CHECK_FALSE(net.heads.at<nn::Sequential>("parity")->at<nn::Linear>(0)->weight.grad().defined());

  std::ostringstream printed;
  printed << net.blocks << "|" << net.heads;
  CHECK(printed.str() ==
        "ModuleList(\n  (0): Linear(in_features=4, out_features=4, bias=true)\n"
        "  (1): Linear(in_features=4, out_features=4, bias=true)\n"
        "  (2): Linear(in_features=4, out_features=4, bias=true)\n)|"
        "ModuleDict(\n  (digits): Linear(in_features=4, out_features=10, bias=true)\n"
        "  (parity): Sequential(\n    (0): Linear(in_features=4, out_features=2, bias=true)\n"
        "    (1): LogSoftmax(dim=1)\n  )\n)");

  // clone and a state_dict round trip keep the kinds, keys and values.
  std::shared_ptr<Tower> copy = nn::clone(net);
  CHECK(copy->blocks.type_name() == "ModuleList");
  CHECK(copy->heads.keys() == net.heads.keys());
  CHECK(tg_test::bitwise_equal((*copy)(x), net(x)));
  CHECK(tg_test::bitwise_equal(copy->run(x, "parity"), net.run(x, "parity")));
  Tower other;
  CHECK_FALSE(tg_test::bitwise_equal(other(x), net(x)));
  other.load_state_dict(net.state_dict());
  CHECK(tg_test::bitwise_equal(other(x), net(x)));

  // Inserting an existing name replaces that module where it stands.
  net.heads.insert("digits", nn::Linear(4, 3));
  CHECK(net.heads.keys() == std::vector<std::string>{"digits", "parity"});
  CHECK(net(x).shape() == tg::Shape{5, 3});
  CHECK(net.state_dict().at("heads.digits.weight").shape() == tg::Shape{3, 4});
  nn::ModuleList built(nn::Linear(2, 3), nn::ReLU());
  CHECK(built.size() == 2);
  CHECK(built[1]->type_name() == "ReLU");

  CHECK_THROWS_WITH_AS(net.blocks(x), "ModuleList: has no forward(input), as PyTorch's; call its modules from your "
                                      "model's forward", tg::Error);
  CHECK_THROWS_WITH_AS(net.heads(x), "ModuleDict: has no forward(input), as PyTorch's; call its modules by name from "
                                     "your model's forward", tg::Error);
  CHECK_THROWS_WITH_AS(net.heads["colour"], "ModuleDict: no module named \"colour\" (it has 2: digits, parity)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(net.blocks[3], "ModuleList: index 3 is out of range for 3 modules", tg::Error);
  CHECK_THROWS_WITH_AS(net.blocks.at<nn::ReLU>(0), "ModuleList: child 0 is a Linear, not the requested type",
                       tg::Error);
  CHECK_THROWS_WITH_AS(net.heads.at<nn::Linear>("parity"), "ModuleDict: \"parity\" is a Sequential, not the requested "
                                                           "type", tg::Error);
  CHECK_THROWS_WITH_AS(net.heads.insert("a.b", nn::ReLU()),
                       "ModuleDict: invalid module name \"a.b\" (names are non-empty and have no '.')", tg::Error);
  CHECK_THROWS_WITH_AS(net.heads.insert("none", std::shared_ptr<nn::Module>()), "ModuleDict: module \"none\" is null",
                       tg::Error);
}

TEST_CASE("state_dict of a 2,000-parameter model is linear time (hash-indexed registry)") {
  struct Many : nn::Module {
    Many() {
      for (int i = 0; i < 2000; ++i) register_parameter("p" + std::to_string(i), tg::zeros({1}));
    }
  };
  Many many;
  const nn::StateDict state = many.state_dict();
  CHECK(state.size() == 2000);
  CHECK(state.find("p1999") != nullptr);
  CHECK(state.keys().front() == "p0");
  many.load_state_dict(state);
}

TEST_CASE("layer_norm in float32 is as accurate as PyTorch's on shifted data, forward and backward") {
  // Generated with PyTorch 1.13 (/usr/bin/python3):
  //   import torch
  //   torch.manual_seed(0)
  //   # 3 rows of 8, shifted by 1000 with spread 0.01: float32 keeps ~5 digits of the deviations.
  //   x64 = (1000 + 0.01 * torch.randn(3, 8, dtype=torch.float64))
  //   x32 = x64.float()
  //   w = torch.linspace(0.5, 1.5, 8, dtype=torch.float64); b = torch.linspace(-0.2, 0.3, 8, dtype=torch.float64)
  //   g = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(3, 8)
  //   def run(x, w, b, g):
  //       x = x.clone().requires_grad_(); w = w.clone().requires_grad_(); b = b.clone().requires_grad_()
  //       y = torch.nn.functional.layer_norm(x, (8,), w, b, 1e-5); y.backward(g)
  //       return y.detach(), x.grad, w.grad, b.grad
  //   ref = run(x32.double(), w, b, g)   # exact math on the float32 input
  //   f32 = run(x32, w.float(), b.float(), g.float())
  //   print("x32 =", x32.flatten().tolist())
  //   for name, r, f in zip("y dx dw db".split(), ref, f32):
  //       print(name, "ref =", r.flatten().tolist())
  //       print(name, "torch32_err =", (f.double() - r).abs().max().item())
  const std::vector<float> x32 = {999.9768676757812, 999.9962768554688, 999.9893798828125, 1000.010009765625, 999.9911499023438, 999.9872436523438, 999.9937744140625, 999.9913330078125, 1000.0023803710938, 1000.00732421875, 999.9867553710938, 1000.0131225585938, 999.985107421875, 999.9928588867188, 1000.0051879882812, 999.990478515625, 1000.0067749023438, 1000.010498046875, 1000.0015258789062, 999.9924926757812, 999.9927368164062, 1000.0008544921875, 999.9825439453125, 1000.0104370117188};
  const Tensor x = Tensor(x32, {3, 8}).set_requires_grad();
  const Tensor w = tg::linspace(0.5, 1.5, 8).set_requires_grad();
  const Tensor b = tg::linspace(-0.2, 0.3, 8).set_requires_grad();
  const Tensor y = tg::layer_norm(x, {8}, w, b, 1e-5);
  y.backward(tg::linspace(-1, 1, 24).reshape({3, 8}));
  struct Row {
    const char* name;
    Tensor got;
    std::vector<double> exact;
    double torch_float32_error;
  };
  const Row rows[] = {
      {"y", y, {-1.0176432596888998, 0.16815394793353128, -0.2799223858445108, 1.820542569659073, -0.01319417311297088, -0.4673934114854799, 0.48808838485276784, 0.19120069529195025, 0.018256837458910075, 0.4618215498537322, -0.9107825832990699, 1.3918693306097574, -1.2504382443999242, -0.43973036809467914, 1.1923753506166395, -0.7853351082403783, 0.16092181561183116, 0.5808150652315053, 0.08725938606191791, -0.6748788793123399, -0.6826620606375402, 0.29674100250667196, -2.162696201977966, 1.9458504029384631}, 0.008915503201720743},
      {"dx", x.grad(), {8.165519816800952, 6.369788583775517, -3.0405425745993853, 1.009792966709938, -7.715761203086004, -7.9029898577718996, -1.3201126460335217, 4.434304914146196, -19.061371779069304, -15.501765687251464, -21.641531263594516, -3.060566728701815, -7.894818968663458, 6.685105721815489, 25.861455018108245, 34.6134936871822, -49.822959892917424, -34.07186066615395, -30.40475866245106, -24.261251722229645, -4.8793034662958235, 26.12326364312321, 29.215309442253783, 88.10156132420525}, 0.7089570332900621},
      {"dw", w.grad(), {1.784895082707722, -0.09332970597375671, 0.4798159343733987, -1.9862871801437703, -0.5240838536220569, 0.32156018439170225, -1.545839862942067, 0.9054031087615784}, 0.003285842060414268},
      {"db", b.grad(), {-0.9130434782608696, -0.6521739130434784, -0.3913043478260869, -0.13043478260869557, 0.13043478260869557, 0.3913043478260868, 0.6521739130434783, 0.9130434782608696}, 9.847723925204832e-08}};
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const std::vector<float> got = row.got.to_vector<float>();
    REQUIRE(got.size() == row.exact.size());
    double error = 0, scale = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      error = std::max(error, std::abs(double(got[i]) - row.exact[i]));
      scale = std::max(scale, std::abs(row.exact[i]));
    }
    // At least as good as PyTorch's float32 (which loses digits to x - mean here); at worst a few
    // float32 roundings of the largest value.
    CHECK(error <= std::max(row.torch_float32_error, 4 * 6e-8 * scale));
  }
}

// Long rows (sums of thousands of terms within a row) and many rows (dweight and dbias sum over
// them), float32 against float64 on the same float32 inputs, with a mean near zero and one far
// from it: y and dx within a few float32 roundings of their largest value, dweight and dbias of
// the sum of their terms' magnitudes.
TEST_CASE("layer_norm in float32 on long rows and many rows stays within a few roundings of float64") {
  // (70 rows of 12,261: 14 blocks of 5 rows for dweight and dbias, a group of 4 and one more each.)
  for (const tg::Shape& shape : {tg::Shape{6, 5000}, tg::Shape{3000, 24}, tg::Shape{2, 3, 700}, tg::Shape{70, 12261}})
    for (double shift : {0.0, 1000.0}) {
      tg::manual_seed(22);
      const std::size_t n = shape.back();
      // g mostly positive: its sums grow, and a float32 running sum would lose digits to them.
      const Tensor x32 = tg::randn(shape) * 2.0 + shift, g32 = tg::randn(shape) + 1.0;
      const Tensor w32 = tg::rand({n}) + 0.5, b32 = tg::randn({n});
      auto run = [&](tg::DType dtype) {
        const Tensor x = x32.to(dtype).detach().set_requires_grad(true);
        const Tensor w = w32.to(dtype).detach().set_requires_grad(true);
        const Tensor b = b32.to(dtype).detach().set_requires_grad(true);
        const Tensor y = tg::layer_norm(x, {std::int64_t(n)}, w, b, 1e-5);
        y.backward(g32.to(dtype));
        return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad(), (y - b) / w};
      };
      const std::vector<Tensor> f32 = run(tg::kFloat32), f64 = run(tg::kFloat64);
      const Tensor g64 = g32.to(tg::kFloat64).reshape({-1, std::int64_t(n)});
      const Tensor x_hat = f64[4].reshape({-1, std::int64_t(n)});
      const std::vector<double> scale_w = tg_test::flat(tg::sum(tg::abs(g64 * x_hat), 0));
      const std::vector<double> scale_b = tg_test::flat(tg::sum(tg::abs(g64), 0));
      tg_test::check_normalization_float32(f32, f64, scale_w, scale_b,
                                           tg::shape_str(shape) + " shift " + std::to_string(shift));
    }
}

// The backward computes only the gradients asked for (the input's, the affine parameters', or
// both), one kernel for each case: each must give the same bits as the case that asks for all, in
// float32 and float64, for row lengths with and without a partial SIMD batch at the end.
TEST_CASE("layer_norm's gradients are the same whichever of them are asked for") {
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (std::size_t n : {1, 5, 16, 17, 33, 300, 1100}) {
      tg::manual_seed(31);
      const tg::Shape shape{13, n};
      const Tensor x0 = (tg::randn(shape) * 2.0 + 1.0).to(dtype), g = tg::randn(shape).to(dtype);
      const Tensor w0 = (tg::rand({n}) + 0.5).to(dtype), b0 = tg::randn({n}).to(dtype);
      auto run = [&](bool input_grad, bool weight_grads) {
        const Tensor x = x0.detach().set_requires_grad(input_grad);
        const Tensor w = w0.detach().set_requires_grad(weight_grads), b = b0.detach().set_requires_grad(weight_grads);
        tg::layer_norm(x, {std::int64_t(n)}, w, b, 1e-5).backward(g);
        return std::vector<Tensor>{x.grad(), w.grad(), b.grad()};
      };
      const std::vector<Tensor> all = run(true, true), input_only = run(true, false), weights_only = run(false, true);
      INFO(tg::dtype_name(dtype), " n ", n);
      CHECK(tg_test::bitwise_equal(input_only[0], all[0]));
      CHECK(!input_only[1].defined());
      CHECK(!weights_only[0].defined());
      CHECK(tg_test::bitwise_equal(weights_only[1], all[1]));
      CHECK(tg_test::bitwise_equal(weights_only[2], all[2]));
      // The bias gradient is Σ_rows g: against a sum in float64.
      tg_test::check_close(all[2], tg_test::flat(tg::sum(g.to(tg::kFloat64), 0)), 1e-5);
    }
}

// Each row of layer_norm is normalised on its own, so a row's y and dx are the same bits whatever
// rows surround it and however the rows are split over tasks: inputs of 8 MB with rows of 500
// (groups of eight rows), of 1000 (rows that start off a 64-byte line, one at a time) and of 2050,
// against their first and last nine rows alone, at 1 and 2 threads.
TEST_CASE("layer_norm of a large input equals its rows normalised alone, bit for bit") {
  const int before = tg::get_num_threads();
  for (const tg::Shape& shape : {tg::Shape{4200, 500}, tg::Shape{2100, 1000}, tg::Shape{1030, 2050}})
    for (int threads : {1, 2}) {
      tg::set_num_threads(threads);
      tg::manual_seed(24);
      const std::int64_t rows = std::int64_t(shape[0]), n = std::int64_t(shape[1]);
      const Tensor x = tg::randn(shape) * 2.0 + 3.0, g = tg::randn(shape);
      const Tensor w = tg::rand({shape[1]}) + 0.5, b = tg::randn({shape[1]});
      auto run = [&](const Tensor& input, const Tensor& grad) {
        const Tensor xi = input.detach().set_requires_grad(true);
        const Tensor y = tg::layer_norm(xi, {n}, w, b, 1e-5);
        y.backward(grad);
        return std::pair{y, xi.grad()};
      };
      const auto [y, dx] = run(x, g);
      for (std::int64_t first : {std::int64_t(0), rows - 9}) {
        const auto [y_alone, dx_alone] = run(tg::narrow(x, 0, first, 9), tg::narrow(g, 0, first, 9));
        INFO(tg::shape_str(shape), " threads ", threads, " rows from ", first);
        CHECK(tg_test::bitwise_equal(tg::narrow(y, 0, first, 9), y_alone));
        CHECK(tg_test::bitwise_equal(tg::narrow(dx, 0, first, 9), dx_alone));
      }
    }
  tg::set_num_threads(before);
}
