// A table of misuses: wrong shapes, dtypes, dims, options and files. Each row must throw tg::Error
// (nothing else, and no crash) whose message contains the row's words: the op or layer, and the
// shapes, dtypes or values involved.
#include <functional>
#include "../core/xtensor.hpp"

#include "helpers.hpp"

using tg::Tensor;
namespace nn = tg::nn;
namespace optim = tg::optim;

namespace {

struct Misuse {
  const char* what;
  std::function<void()> call;
  const char* words;
};

Tensor f32(const tg::Shape& shape) { return tg::zeros(shape); }
Tensor f64(const tg::Shape& shape) { return tg::zeros(shape, tg::kFloat64); }
Tensor i64(const tg::Shape& shape) { return tg::zeros(shape, tg::kInt64); }
Tensor leaf(const tg::Shape& shape) { return tg::zeros(shape).set_requires_grad(); }
tg::ClassLossOptions smoothing(double s) {
  tg::ClassLossOptions o;
  o.label_smoothing = s;
  return o;
}

const std::vector<Misuse>& misuses() {
  static const std::vector<Misuse> rows = {
      // ---- elementwise and broadcasting
      {"add shapes", [] { (void)(f32({2, 3}) + f32({4})); }, "add: shapes [2, 3] and [4] cannot be broadcast"},
      {"sub shapes", [] { (void)(f32({2, 3}) - f32({3, 2})); }, "sub: shapes [2, 3] and [3, 2]"},
      {"mul dtypes", [] { (void)(f32({2}) * f64({2})); }, "mul: expected both inputs to have one dtype, got float32 [2] and float64 [2]"},
      {"div dtypes", [] { (void)(f64({2}) / f32({2})); }, "div: expected both inputs to have one dtype"},
      {"pow shapes", [] { (void)tg::pow(f32({2}), f32({3})); }, "pow: shapes [2] and [3]"},
      {"maximum shapes", [] { (void)tg::maximum(f32({2}), f32({3})); }, "maximum: shapes [2] and [3]"},
      {"minimum dtypes", [] { (void)tg::minimum(f32({2}), f64({2})); }, "minimum: expected both inputs to have one dtype"},
      {"where shapes", [] { (void)tg::where(f32({2}), f32({3}), f32({3})); }, "where"},
      {"exp of int64", [] { (void)tg::exp(i64({2})); }, "exp"},
      {"log of int64", [] { (void)tg::log(i64({2})); }, "log"},
      {"relu of int64", [] { (void)tg::relu(i64({2})); }, "relu"},
      {"sigmoid of int64", [] { (void)tg::sigmoid(i64({2})); }, "sigmoid"},
      {"eq shapes", [] { (void)tg::eq(f32({2}), f32({3})); }, "eq: shapes [2] and [3]"},
      {"lt dtypes", [] { (void)tg::lt(f32({2}), f64({2})); }, "lt: expected both inputs to have one dtype"},
      {"gelu approximate", [] { (void)tg::gelu(f32({2}), "fast"); }, "gelu: approximate must be \"none\" or \"tanh\", got \"fast\""},
      {"dropout p", [] { (void)tg::dropout(f32({2}), 1.5); }, "dropout: probability must be in [0, 1], got 1.5"},
      {"softmax dim", [] { (void)tg::softmax(f32({2, 3}), 2); }, "softmax: dim 2 is out of range for a 2D tensor [2, 3]"},
      {"log_softmax dim", [] { (void)tg::log_softmax(f32({2, 3}), -3); }, "log_softmax: dim -3 is out of range"},
      // ---- reductions
      {"sum dim", [] { (void)tg::sum(f32({2, 3}), {2}); }, "sum: dim 2 is out of range for a 2D tensor [2, 3]"},
      {"sum repeated dim", [] { (void)tg::sum(f32({2, 3}), {1, -1}); }, "sum: dim -1 appears more than once"},
      {"mean dim", [] { (void)tg::mean(f32({2}), {-2}); }, "mean: dim -2 is out of range"},
      {"var dim", [] { (void)tg::var(f32({2}), {3}); }, "var: dim 3 is out of range"},
      {"std dim", [] { (void)tg::std(f32({2}), {1}); }, "std: dim 1 is out of range for a 1D tensor [2]"},
      {"logsumexp int64", [] { (void)tg::logsumexp(i64({2}), {0}); }, "logsumexp: expected a floating-point tensor, got int64"},
      {"logsumexp dim", [] { (void)tg::logsumexp(f32({2}), {1}); }, "logsumexp: dim 1 is out of range"},
      {"max of empty", [] { (void)tg::max(f32({0})); }, "max: cannot reduce over an empty tensor in [0]"},
      {"max dim of size 0", [] { (void)tg::max(f32({3, 0}), 1); }, "max: cannot reduce over dim 1 of size 0 in [3, 0]"},
      {"argmin dim", [] { (void)tg::argmin(f32({2, 3}), 5); }, "argmin: dim 5 is out of range"},
      {"sum_to rank", [] { (void)tg::sum_to(f32({3}), {2, 3}); }, "sum_to: cannot sum [3] to the larger rank [2, 3]"},
      // ---- linear algebra
      {"matmul inner", [] { (void)tg::matmul(f32({2, 3}), f32({4, 5})); }, "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)"},
      {"matmul vectors", [] { (void)tg::matmul(f32({3}), f32({4})); }, "matmul: shapes [3] and [4] cannot be multiplied"},
      {"matmul batch", [] { (void)tg::matmul(f32({2, 2, 3}), f32({3, 3, 4})); }, "matmul: batch dims of [2, 2, 3] and [3, 3, 4] cannot be broadcast"},
      {"matmul scalar", [] { (void)tg::matmul(f32({}), f32({3})); }, "matmul: both arguments need at least 1 dimension"},
      {"matmul dtypes", [] { (void)tg::matmul(f32({2, 2}), f64({2, 2})); }, "matmul: expected both inputs to have one dtype, got float32 [2, 2] and float64 [2, 2]"},
      {"linear weight rank", [] { (void)tg::linear(f32({2, 3}), f32({3})); }, "linear: expected a 2-D weight, got [3]"},
      {"linear in_features", [] { (void)tg::linear(f32({2, 3}), f32({4, 5})); }, "linear: input [2, 3] does not end in in_features = 5"},
      {"linear bias", [] { (void)tg::linear(f32({2, 3}), f32({4, 3}), f32({5})); }, "linear: bias [5] does not match out_features = 4"},
      {"linear dtypes", [] { (void)tg::linear(f64({2, 3}), f32({4, 3})); }, "linear: expected one dtype, got input float64 and weight float32"},
      // ---- shapes
      {"reshape size", [] { (void)tg::reshape(f32({2, 3}), {4, 2}); }, "reshape: shape [4, 2] is invalid for input of size 6 [2, 3]"},
      {"reshape two -1", [] { (void)tg::reshape(f32({2, 3}), {-1, -1}); }, "reshape: only one dim can be -1"},
      {"reshape negative", [] { (void)tg::reshape(f32({2, 3}), {-2, 3}); }, "reshape: invalid size -2"},
      {"reshape -1 with 0", [] { (void)tg::reshape(f32({2, 3}), {0, -1}); }, "reshape: shape [0, -1] is invalid for input of size 6"},
      {"transpose dim", [] { (void)tg::transpose(f32({2, 3}), 0, 2); }, "transpose: dim 2 is out of range"},
      {"permute length", [] { (void)tg::permute(f32({2, 3}), {0}); }, "permute"},
      {"permute repeat", [] { (void)tg::permute(f32({2, 3}), {0, 0}); }, "permute"},
      {"flatten order", [] { (void)tg::flatten(f32({2, 3, 4}), 2, 1); }, "flatten: start_dim 2 comes after end_dim 1"},
      {"squeeze dim", [] { (void)tg::squeeze(f32({2, 1}), 3); }, "squeeze: dim 3 is out of range"},
      {"unsqueeze dim", [] { (void)tg::unsqueeze(f32({2}), 3); }, "unsqueeze: dim 3 is out of range"},
      {"expand size", [] { (void)tg::expand(f32({2, 3}), {2, 4}); }, "expand: cannot expand [2, 3] to [2, 4] (dim 1)"},
      {"expand rank", [] { (void)tg::expand(f32({2, 3}), {3}); }, "expand: the target [3] has fewer dims than [2, 3]"},
      {"cat empty list", [] { (void)tg::cat({}); }, "cat: expected at least one tensor"},
      {"cat shapes", [] { (void)tg::cat({f32({2, 3}), f32({2, 4})}, 0); }, "cat"},
      {"cat dtypes", [] { (void)tg::cat({f32({2}), f64({2})}); }, "cat"},
      {"stack shapes", [] { (void)tg::stack({f32({2}), f32({3})}); }, "stack"},
      {"narrow range", [] { (void)tg::narrow(f32({4}), 0, 3, 2); }, "narrow: start 3 and length 2 are out of range for dim 0 of size 4"},
      {"narrow negative", [] { (void)tg::narrow(f32({4}), 0, -1, 2); }, "narrow: start -1 and length 2"},
      {"slice step", [] { (void)tg::slice(f32({4}), 0, 0, 4, 0); }, "slice: step must be positive, got 0"},
      {"select index", [] { (void)tg::select(f32({4}), 0, 4); }, "select"},
      {"index_select dtype", [] { (void)tg::index_select(f32({4}), 0, f32({2})); }, "index_select"},
      {"index_select range", [] { (void)tg::index_select(f32({4}), 0, Tensor(std::vector<std::int64_t>{4}, {1})); }, "index_select"},
      // ---- tensors, creation, autograd
      {"vector size", [] { (void)Tensor(std::vector<float>{1, 2, 3}, {2, 2}); }, "Tensor: 3 values do not fill shape [2, 2]"},
      {"item of many", [] { (void)f32({2}).item(); }, "item: only a tensor with one element can be converted to a number, got shape [2]"},
      {"values dtype", [] { (void)f32({2}).values<double>(); }, "values: the tensor is float32, not float64"},
      {"values_mut recording", [] { (void)leaf({2}).values_mut<float>(); }, "values_mut: a tensor that requires grad can only be changed in place under NoGradGuard"},
      {"undefined tensor", [] { (void)Tensor().shape(); }, "shape: the tensor is undefined"},
      {"int64 requires grad", [] { (void)i64({2}).set_requires_grad(); }, "int64"},
      {"zeros int64 grad", [] { (void)tg::zeros({2}, tg::TensorOptions().dtype(tg::kInt64).requires_grad(true)); }, "zeros: only floating-point tensors can require grad, got int64"},
      {"arange step", [] { (void)tg::arange(0, 1, 0); }, "arange: step must be non-zero"},
      {"arange direction", [] { (void)tg::arange(0, 1, -1); }, "arange: the range [0, 1) cannot be reached with step -1"},
      {"randint range", [] { (void)tg::randint(3, 3, {2}); }, "randint: expected low < high, got low=3, high=3"},
      {"zeros overflow", [] { (void)tg::zeros({std::size_t(1) << 40, std::size_t(1) << 40}); }, "zeros: the shape [1099511627776, 1099511627776] has more elements than fit in memory"},
      {"backward non-scalar", [] { tg::relu(leaf({2})).backward(); }, "backward: grad can be implicitly created only for scalar outputs, got shape [2]"},
      {"backward no grad", [] { f32({1}).backward(); }, "backward: the tensor does not require grad and has no grad_fn"},
      {"backward seed shape", [] { tg::relu(leaf({2})).backward(f32({3})); }, "backward: gradient shape [3] does not match the output shape [2]"},
      {"backward seed dtype", [] { tg::relu(leaf({2})).backward(f64({2})); }, "backward: gradient dtype float64 does not match the output dtype float32"},
      {"backward twice", [] { const Tensor y = tg::sum(tg::exp(leaf({2}))); y.backward(); y.backward(); }, "trying to backward through the graph a second time"},
      {"in-place after save", [] {
         const Tensor x = f32({2});
         const Tensor y = tg::sum(leaf({2}) * x);
         { tg::NoGradGuard g; x.detach().values_mut<float>()(0) = 1.0f; }
         y.backward();
       }, "backward of mul: input 1 (float32 [2]) was modified in place after mul saved it"},
      {"gradcheck float32", [] { (void)tg::gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {leaf({2})}); }, "gradcheck: input 0 is float32 [2]; inputs that require grad must be float64"},
      {"set_rng_state", [] { tg::set_rng_state(f32({3})); }, "set_rng_state: expected an int64 tensor of 315 values"},
      // ---- losses
      {"mse shapes", [] { (void)tg::mse_loss(f32({2}), f32({3})); }, "mse_loss: input [2] and target [3] must have the same shape"},
      {"l1 shapes", [] { (void)tg::l1_loss(f32({2}), f32({2, 1})); }, "l1_loss: input [2] and target [2, 1]"},
      {"smooth_l1 beta", [] { (void)tg::smooth_l1_loss(f32({2}), f32({2}), tg::Reduction::Mean, -1); }, "smooth_l1_loss: beta must be non-negative, got -1"},
      {"huber delta", [] { (void)tg::huber_loss(f32({2}), f32({2}), tg::Reduction::Mean, 0); }, "huber_loss: delta must be positive, got 0"},
      {"cross_entropy target dtype", [] { (void)tg::cross_entropy(f32({4, 3}), f32({4})); }, "cross_entropy: a floating-point target is read as class probabilities and must have the input's shape [4, 3], got float32 [4]"},
      {"cross_entropy target range", [] { (void)tg::cross_entropy(f32({2, 3}), Tensor(std::vector<std::int64_t>{0, 3}, {2})); }, "cross_entropy: target 3 is out of range for 3 classes (sample 1)"},
      {"cross_entropy target shape", [] { (void)tg::cross_entropy(f32({2, 3}), i64({3})); }, "cross_entropy: target [3] does not match input [2, 3] (expected target [2])"},
      {"cross_entropy smoothing", [] { (void)tg::cross_entropy(f32({2, 3}), i64({2}), smoothing(1.5)); }, "cross_entropy: label_smoothing must be in [0, 1], got 1.5"},
      {"cross_entropy weight", [] { tg::ClassLossOptions o; o.weight = f32({2}); (void)tg::cross_entropy(f32({2, 3}), i64({2}), o); }, "cross_entropy: weight [2] must have one entry per class (3)"},
      {"cross_entropy 4d target", [] { (void)tg::cross_entropy(f32({2, 3, 4}), i64({2, 5})); }, "cross_entropy: target [2, 5] does not match input [2, 3, 4] (expected target [2, 4])"},
      {"cross_entropy int input", [] { (void)tg::cross_entropy(i64({2, 3}), i64({2})); }, "cross_entropy: expected floating-point input, got int64"},
      {"nll shapes", [] { (void)tg::nll_loss(f32({2, 3}), i64({4})); }, "nll_loss: target [4] does not match input [2, 3]"},
      {"bce range", [] { (void)tg::binary_cross_entropy(Tensor({1.5}), Tensor({1.0})); }, "binary_cross_entropy: input values must be in [0, 1], got 1.5"},
      {"bce shapes", [] { (void)tg::binary_cross_entropy(f32({2}), f32({3})); }, "binary_cross_entropy: input [2] and target [3]"},
      {"bce dtypes", [] { (void)tg::binary_cross_entropy(f32({2}), f64({2})); }, "binary_cross_entropy: input is float32 but target is float64"},
      {"bce logits shapes", [] { (void)tg::binary_cross_entropy_with_logits(f32({2}), f32({3})); }, "binary_cross_entropy_with_logits: input [2] and target [3]"},
      // ---- normalisation and layers
      {"batch_norm rank", [] { (void)nn::functional::batch_norm(f32({4}), Tensor(), Tensor(), Tensor(), Tensor(), true); }, "batch_norm: expected input with at least 2 dimensions (N, C, ...), got 1D input [4]"},
      {"batch_norm running", [] { (void)nn::functional::batch_norm(f32({4, 2}), Tensor(), Tensor(), Tensor(), Tensor(), false); }, "batch_norm: running_mean and running_var are required to normalise with running statistics"},
      {"batch_norm pair", [] { (void)nn::functional::batch_norm(f32({4, 2}), f32({2}), Tensor()); }, "batch_norm: running_mean and running_var must be given together"},
      {"batch_norm weight", [] { (void)nn::functional::batch_norm(f32({4, 2}), Tensor(), Tensor(), f32({3}), Tensor(), true); }, "batch_norm: weight has shape [3], expected [2] (one value per channel)"},
      {"batch_norm one value", [] { (void)nn::functional::batch_norm(f32({1, 2}), Tensor(), Tensor(), Tensor(), Tensor(), true); }, "batch_norm: Expected more than 1 value per channel when training, got input size [1, 2]"},
      {"BatchNorm1d rank", [] { nn::BatchNorm1d bn(4); (void)bn(f32({2, 4, 3, 3})); }, "BatchNorm1d: expected 2D or 3D input (got 4D input [2, 4, 3, 3])"},
      {"BatchNorm1d channels", [] { nn::BatchNorm1d bn(4); (void)bn(f32({2, 3})); }, "BatchNorm1d: expected 4 channels (num_features) at dim 1, got input [2, 3]"},
      {"BatchNorm1d MindSpore data_format", [] { nn::BatchNorm1d bn(nn::BatchNorm1dOptions::mindspore(4).data_format("NCL")); }, "BatchNorm1d: data_format must be \"NCHW\" or \"NHWC\", got \"NCL\""},
      {"BatchNorm1d dtype", [] { nn::BatchNorm1d bn(2); (void)bn(f64({4, 2})); }, "BatchNorm1d: weight is float32 but the input is float64"},
      {"layer_norm shape", [] { (void)tg::layer_norm(f32({2, 3}), {4}); }, "layer_norm: expected input with trailing dims [4], got [2, 3]"},
      {"Linear input", [] { nn::Linear l(3, 2); (void)l(f32({2, 4})); }, "Linear: expected input with last dim 3 (in_features), got [2, 4]"},
      {"Linear dtype", [] { nn::Linear l(3, 2); (void)l(f64({2, 3})); }, "linear: expected one dtype, got input float64 and weight float32"},
      {"Dropout p", [] { nn::Dropout d(-0.1); }, "Dropout: p must be in [0, 1], got -0.1"},
      {"Module to int64", [] { nn::Linear l(3, 2); l.to(tg::kInt64); }, "to() takes a floating dtype, got int64"},
      {"load_state_dict missing", [] { nn::Linear l(3, 2); nn::StateDict s; l.load_state_dict(s); }, "error loading state_dict: missing keys"},
      {"load_state_dict shape", [] { nn::Linear l(3, 2); nn::StateDict s = l.state_dict(); *s.find("weight") = f32({3, 3}); l.load_state_dict(s); }, "Linear: error loading state_dict: mismatched keys [weight: expected float32 [2, 3], got float32 [3, 3]]"},
      {"init fans", [] { Tensor t = f32({3}); nn::init::xavier_uniform_(t); }, "calculate_fan_in_and_fan_out: fans need a tensor of at least 2 dims, got [3]"},
      {"init uniform bounds", [] { Tensor t = f32({3}); nn::init::uniform_(t, 1, 0); }, "uniform_: low 1 is greater than high 0"},
      {"init normal std", [] { Tensor t = f32({3}); nn::init::normal_(t, 0, -1); }, "normal_: std must be non-negative, got -1"},
      // ---- optimizers and schedulers
      {"SGD lr", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(-1)); }, "SGD: invalid learning rate lr=-1 (must be >= 0)"},
      {"SGD nesterov", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1).nesterov(true)); }, "SGD: nesterov needs momentum > 0 and dampening = 0"},
      {"SGD empty group", [] { optim::SGD o(std::vector<Tensor>{}, optim::SGDOptions(0.1)); }, "SGD: a parameter group needs at least one parameter"},
      {"SGD non-leaf", [] { optim::SGD o({tg::exp(leaf({1}))}, optim::SGDOptions(0.1)); }, "SGD: can only optimize leaf tensors that require grad"},
      {"Adam betas", [] { optim::Adam o({leaf({1})}, optim::AdamOptions().betas({1.0, 0.9})); }, "Adam: invalid beta1=1 (must be in [0, 1))"},
      {"AdamW eps", [] { optim::AdamW o({leaf({1})}, optim::AdamWOptions().eps(-1)); }, "AdamW: invalid eps=-1 (must be >= 0)"},
      {"RMSprop alpha", [] { optim::RMSprop o({leaf({1})}, optim::RMSpropOptions().alpha(-0.5)); }, "RMSprop: invalid alpha=-0.5"},
      {"Adagrad decay", [] { optim::Adagrad o({leaf({1})}, optim::AdagradOptions().lr_decay(-1)); }, "Adagrad: invalid lr_decay=-1 (must be >= 0)"},
      {"Adam group override", [] { const Tensor p = leaf({1}); optim::Adam o(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{p}, [](auto& g) { g.lr(-3); }}}, optim::AdamOptions()); }, "Adam: invalid learning rate lr=-3"},
      {"optimizer state key", [] { optim::Adam o({leaf({1})}, optim::AdamOptions()); nn::StateDict s = o.state_dict(); s.insert("state.0.bogus", f32({1})); o.load_state_dict(s); }, "Adam: unexpected state key \"state.0.bogus\""},
      {"optimizer state group", [] { optim::Adam o({leaf({1})}, optim::AdamOptions()); nn::StateDict s = o.state_dict(); s.insert("param_groups.3.lr", f64({})); o.load_state_dict(s); }, "Adam: the state has parameter group 3 but the optimizer has 1"},
      {"StepLR step_size", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::StepLR s(o, 0); }, "StepLR: step_size must be positive, got 0"},
      {"CosineAnnealingLR T_max", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::CosineAnnealingLR s(o, 0); }, "CosineAnnealingLR: T_max must be positive, got 0"},
      {"LinearLR factor", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::LinearLR s(o, 0.0); }, "LinearLR: start_factor must be in (0, 1], got 0"},
      {"CosineAnnealingWarmRestarts T_mult", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::CosineAnnealingWarmRestarts s(o, 2, 0); }, "CosineAnnealingWarmRestarts: expected T_mult >= 1, got 0"},
      {"OneCycleLR total_steps", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::OneCycleLR s(o, optim::OneCycleLROptions(1.0, 0)); }, "OneCycleLR: total_steps must be positive, got 0"},
      {"OneCycleLR pct_start", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::OneCycleLR s(o, optim::OneCycleLROptions(1.0, 5).pct_start(2)); }, "OneCycleLR: pct_start must be in [0, 1], got 2"},
      {"OneCycleLR max_lr count", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::OneCycleLR s(o, optim::OneCycleLROptions(std::vector<double>{1, 2}, 5)); }, "OneCycleLR: expected 1 or 1 max_lr values (one per parameter group), got 2"},
      {"SequentialLR empty", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::SequentialLR s(o, {}, {}); }, "SequentialLR: expects at least one scheduler"},
      {"ChainedScheduler empty", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::ChainedScheduler s({}, o); }, "ChainedScheduler: expects at least one scheduler"},
      {"ReduceLROnPlateau mode", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::ReduceLROnPlateau s(o, optim::ReduceLROnPlateauOptions().mode("up")); }, "ReduceLROnPlateau: mode must be \"min\" or \"max\", got \"up\""},
      {"ReduceLROnPlateau factor", [] { optim::SGD o({leaf({1})}, optim::SGDOptions(0.1)); optim::ReduceLROnPlateau s(o, optim::ReduceLROnPlateauOptions().factor(1.0)); }, "ReduceLROnPlateau: factor should be < 1.0, got 1"},
      {"clip norm type", [] { optim::clip_grad_norm_({leaf({1})}, 1.0, -2); }, "clip_grad_norm_: norm_type must be positive (or INFINITY), got -2"},
      {"clip value", [] { optim::clip_grad_value_({leaf({1})}, -1); }, "clip_grad_value_: clip_value must be non-negative, got -1"},
      // ---- data
      {"TensorDataset sizes", [] { (void)tg::data::TensorDataset(f32({3, 2}), f32({4})); }, "TensorDataset"},
      {"random_split lengths", [] { (void)tg::data::random_split(tg::data::TensorDataset(f32({3, 2}), f32({3})), {1, 1}); }, "random_split: lengths [1, 1] add up to 2, not the dataset size 3"},
      {"load_csv missing", [] { (void)tg::data::load_csv("/nonexistent/file.csv"); }, "load_csv: cannot open /nonexistent/file.csv"},
      {"load_idx missing", [] { (void)tg::data::load_idx_images("/nonexistent/idx"); }, "load_idx_images: cannot open /nonexistent/idx"},
      {"load_mnist missing", [] { (void)tg::data::load_mnist("/nonexistent", true); }, "load_mnist: /nonexistent has no train-images-idx3-ubyte"},
      // ---- files
      {"load missing file", [] { (void)tg::load_state_dict("/nonexistent/model.safetensors"); }, "load: /nonexistent/model.safetensors: cannot open the file"},
      {"load directory", [] { nn::Linear l(2, 2); tg::load(l, "/tmp"); }, "load: /tmp: is a directory, not a safetensors file"},
      {"save directory", [] { nn::Linear l(2, 2); tg::save(l, "/tmp"); }, "save: /tmp: is a directory, not a file"},
      {"save unwritable", [] { nn::Linear l(2, 2); tg::save(l, "/nonexistent/dir/model.safetensors"); }, "save: /nonexistent/dir/model.safetensors: cannot create a temporary file in its directory"},
      {"save metadata name", [] { nn::StateDict s; s.insert("__metadata__", f32({1})); tg::save(s, "/tmp/tapegrad_misuse.safetensors"); }, "save: \"__metadata__\" cannot be a tensor name"},
  };
  return rows;
}

}  // namespace

TEST_CASE("every misuse in the table throws tg::Error with words that name the op and the values") {
  REQUIRE(misuses().size() >= 100);
  for (const Misuse& row : misuses()) {
    INFO("misuse: ", std::string(row.what));
    CHECK_THROWS_WITH_AS(row.call(), doctest::Contains(row.words), tg::Error);
  }
}
