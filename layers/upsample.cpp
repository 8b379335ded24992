#include "layers/upsample.hpp"

#include <cmath>
#include <ostream>

namespace tg::nn {

Tensor Upsample::forward(const Tensor& input) {
  InterpolateOptions o;
  o.size = options.size();
  o.scale_factor = options.scale_factor();
  o.mode = options.mode();
  o.align_corners = options.align_corners();
  try {
    return interpolate(input, o);
  } catch (const Error& e) {
    fail("Upsample: ", e.what());
  }
}

// PyTorch's repr: the scale factors as floats ("2.0"), one value alone, several as a tuple.
void Upsample::print_options(std::ostream& out) const {
  auto list = [&](const auto& values, bool as_float) {
    if (values.size() != 1) out << '(';
    for (std::size_t i = 0; i < values.size(); ++i) {
      out << (i ? ", " : "") << values[i];
      if (as_float && double(values[i]) == std::floor(double(values[i]))) out << ".0";
    }
    if (values.size() != 1) out << ')';
  };
  if (!options.scale_factor().empty()) {
    out << "scale_factor=";
    list(options.scale_factor(), true);
  } else {
    out << "size=";
    list(options.size(), false);
  }
  const InterpolateMode m = options.mode();
  out << ", mode=" << (m == InterpolateMode::Nearest ? "nearest" : m == InterpolateMode::Linear ? "linear" : "bilinear");
}

}  // namespace tg::nn
