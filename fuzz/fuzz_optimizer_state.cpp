// bytes -> a state dict -> Adam and SGD (two groups) and a scheduler load it: every value is
// validated, so a bad state is a tg::Error that leaves the optimizer unchanged, and a state that
// loads can be stepped without NaN appearing from the state alone.
#include <cmath>

#include "fuzz_common.hpp"

namespace nn = tg::nn;
namespace optim = tg::optim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz::scratch("optimizer_state");
  fuzz::write(path, data, size);
  nn::StateDict state;
  try {
    state = tg::load_state_dict(path);
  } catch (const tg::Error&) {
    return 0;
  }
  tg::Tensor w = tg::ones({2, 3}).set_requires_grad(), b = tg::ones({2}).set_requires_grad();
  optim::Adam adam(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{w}}, {{b}, [](auto& o) { o.amsgrad(true); }}},
                   optim::AdamOptions(0.01));
  optim::SGD sgd({w, b}, optim::SGDOptions(0.1).momentum(0.9));
  optim::StepLR schedule(sgd, 2);
  for (optim::OptimizerBase* opt : {static_cast<optim::OptimizerBase*>(&adam), static_cast<optim::OptimizerBase*>(&sgd)}) {
    const nn::StateDict before = opt->state_dict();
    try {
      opt->load_state_dict(nn::under_prefix(state, "optimizer."));
    } catch (const tg::Error&) {
      const nn::StateDict after = opt->state_dict();  // unchanged
      if (after.size() != before.size()) __builtin_trap();
      for (const auto& [key, value] : before)
        if (!after.contains(key) || !fuzz::same_bits(value, after.at(key))) __builtin_trap();
      continue;
    }
    // A loaded state steps without crashing; the gradient is finite, so are the options.
    tg::sum(w * w + b.reshape({2, 1})).backward();
    opt->step();
    opt->zero_grad();
  }
  fuzz::expect_only_tg_errors([&] { schedule.load_state_dict(nn::under_prefix(state, "scheduler.")); });
  return 0;
}
