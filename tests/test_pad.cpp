// pad (constant, reflect, replicate, circular) and the padding layers: PyTorch's values and
// gradients, every mode, rank and padding against the definition, the adjoint, gradcheck, thread
// counts, errors; Conv padding_mode.
#include "helpers.hpp"

#include <cmath>
#include <optional>
#include <random>
#include <sstream>

using tg::Tensor;
using tg_test::check_close;
using tg_test::cos_;
using tg_test::seq;
using tg_test::sin_;
using tg_test::uniform64;
namespace nn = tg::nn;

namespace {


double dot(const Tensor& a, const Tensor& b) { return tg::sum(a * b).item(); }

// The definition, one output value at a time: the input index that output index o of a dim of
// n values reads (nullopt: the constant), or nullopt for the whole call when the padding is
// invalid (valid = false).
struct Reference {
  tg::PadMode mode;
  bool valid = true;
  std::optional<std::int64_t> source(std::int64_t n, std::int64_t left, std::int64_t right, std::int64_t o) const {
    const std::int64_t c = o - left;
    switch (mode) {
      case tg::PadMode::Constant:
        return c >= 0 && c < n ? std::optional<std::int64_t>(c) : std::nullopt;
      case tg::PadMode::Reflect: {  // mirror about the first and the last value
        std::int64_t m = c;
        if (m < 0) m = -m;
        if (m > n - 1) m = 2 * (n - 1) - m;
        return m;
      }
      case tg::PadMode::Replicate:
        return std::min(std::max<std::int64_t>(c, 0), n - 1);
      default: {  // cut by the negative entries, then wrapped around what is left
        const std::int64_t from = std::max<std::int64_t>(-left, 0), to = n - std::max<std::int64_t>(-right, 0);
        const std::int64_t length = to - from;
        std::int64_t k = (o - std::max<std::int64_t>(left, 0)) % length;
        if (k < 0) k += length;
        return from + k;
      }
    }
  }
  bool fits(std::int64_t n, std::int64_t left, std::int64_t right) const {
    const std::int64_t out = n + left + right;
    switch (mode) {
      case tg::PadMode::Constant: return out >= 0;
      case tg::PadMode::Reflect: return n > 0 && out >= 1 && left < n && right < n;
      case tg::PadMode::Replicate: return n > 0 && out >= 1;
      default: {
        const std::int64_t kept = n - std::max<std::int64_t>(-left, 0) - std::max<std::int64_t>(-right, 0);
        return out >= 0 && left <= kept && right <= kept;
      }
    }
  }
};

// pad by the definition (float64), or nullopt when the padding is invalid.
std::optional<Tensor> reference_pad(const Tensor& x, const std::vector<std::int64_t>& pads, tg::PadMode mode,
                                    double value) {
  const Reference ref{mode};
  const tg::Shape& in = x.shape();
  const std::size_t rank = in.size(), pairs = pads.size() / 2;
  tg::Shape out = in;
  for (std::size_t k = 0; k < pairs; ++k) {
    const std::size_t d = rank - 1 - k;
    if (!ref.fits(std::int64_t(in[d]), pads[2 * k], pads[2 * k + 1])) return std::nullopt;
    out[d] = std::size_t(std::int64_t(in[d]) + pads[2 * k] + pads[2 * k + 1]);
  }
  const std::vector<double> xs = x.to_vector<double>();
  std::vector<double> ys(tg::checked_numel("reference", out));
  std::vector<std::size_t> at(rank, 0);
  for (double& y : ys) {
    std::size_t offset = 0;
    bool inside = true;
    for (std::size_t d = 0; d < rank; ++d) {
      std::int64_t i = std::int64_t(at[d]);
      if (d + pairs >= rank) {
        const std::size_t k = rank - 1 - d;
        const auto s = ref.source(std::int64_t(in[d]), pads[2 * k], pads[2 * k + 1], i);
        inside = inside && s.has_value();
        i = s.value_or(0);
      }
      offset = offset * in[d] + std::size_t(i);
    }
    y = inside ? xs[offset] : value;
    for (std::size_t d = rank; d-- > 0;) {  // the next output index
      if (++at[d] < out[d]) break;
      at[d] = 0;
    }
  }
  return Tensor(ys, out);
}

}  // namespace

TEST_CASE("pad matches PyTorch's values and gradients in every mode") {
  // Generated with torch 1.13 (python3-torch), x = sin(i) and the output's gradient cos(i) over
  // the flattened shapes:
  //   import torch, torch.nn.functional as F, math
  //   torch.set_default_dtype(torch.float64)
  //   seq = lambda shape, f: torch.tensor([f(i) for i in range(math.prod(shape))]).reshape(shape)
  //   for mode, shape, pads, value in cases:  # the table below
  //       x = seq(shape, math.sin).requires_grad_()
  //       y = F.pad(x, pads, mode=mode, value=value) if value is not None else F.pad(x, pads, mode=mode)
  //       y.backward(seq(tuple(y.shape), math.cos)); print(y.flatten().tolist(), x.grad.flatten().tolist())
  struct Case {
    tg::PadMode mode;
    tg::Shape shape;
    std::vector<std::int64_t> pads;
    std::optional<double> value;
    tg::Shape out;
    std::vector<double> y, dx;
  };
  const std::vector<Case> cases = {
      {tg::PadMode::Reflect, {1, 2, 3}, {1, 2}, std::nullopt, {1, 2, 6},
       {0.841470985, 0, 0.841470985, 0.909297427, 0.841470985, 0, -0.756802495, 0.141120008, -0.756802495, -0.958924275, -0.756802495, 0.141120008},
       {0.823964491, -0.0697904574, -0.989992497, 0.758327952, -0.0244012762, -0.911130262}},
      {tg::PadMode::Reflect, {2, 3}, {-1, 2}, std::nullopt, {2, 4},
       {0.841470985, 0.909297427, 0.841470985, 0, -0.756802495, -0.958924275, -0.756802495, 0.141120008},
       {-0.989992497, 0.583853163, 0.540302306, 0.753902254, 0.306526666, 0.283662185}},
      {tg::PadMode::Reflect, {1, 2, 3, 4}, {2, 1, 1, 2}, std::nullopt, {1, 2, 6, 7},
       {-0.279415498, -0.958924275, -0.756802495, -0.958924275, -0.279415498, 0.656986599, -0.279415498, 0.909297427, 0.841470985, 0, 0.841470985, 0.909297427, 0.141120008, 0.909297427, -0.279415498, -0.958924275, -0.756802495, -0.958924275, -0.279415498, 0.656986599, -0.279415498, -0.544021111, 0.412118485, 0.989358247, 0.412118485, -0.544021111, -0.999990207, -0.544021111, -0.279415498, -0.958924275, -0.756802495, -0.958924275, -0.279415498, 0.656986599, -0.279415498, 0.909297427, 0.841470985, 0, 0.841470985, 0.909297427, 0.141120008, 0.909297427, -0.750987247, -0.961397492, -0.287903317, -0.961397492, -0.750987247, 0.14987721, -0.750987247, 0.990607356, 0.420167037, -0.536572918, 0.420167037, 0.990607356, 0.65028784, 0.990607356, -0.750987247, -0.961397492, -0.287903317, -0.961397492, -0.750987247, 0.14987721, -0.750987247, -0.00885130929, 0.836655639, 0.912945251, 0.836655639, -0.00885130929, -0.846220404, -0.00885130929, -0.750987247, -0.961397492, -0.287903317, -0.961397492, -0.750987247, 0.14987721, -0.750987247, 0.990607356, 0.420167037, -0.536572918, 0.420167037, 0.990607356, 0.65028784, 0.990607356},
       {-0.14571621, -0.157461608, 0.0413861835, 0.176915897, -1.21955487, -1.31785661, 1.53470987, 1.25909006, -0.53283302, -0.575781819, 0.151334743, 0.646919322, -0.15381675, -0.166215089, 0.399687582, 0.120367865, 0.151772856, 0.164006448, 0.731374566, -0.328685835, -0.562453851, -0.607790226, 1.46151716, 0.440143022}},
      {tg::PadMode::Reflect, {1, 1, 2, 3, 2}, {1, 0, 1, 1, 0, 1}, std::nullopt, {1, 1, 3, 5, 3},
       {0.141120008, 0.909297427, 0.141120008, 0.841470985, 0, 0.841470985, 0.141120008, 0.909297427, 0.141120008, -0.958924275, -0.756802495, -0.958924275, 0.141120008, 0.909297427, 0.141120008, 0.412118485, 0.989358247, 0.412118485, 0.656986599, -0.279415498, 0.656986599, 0.412118485, 0.989358247, 0.412118485, -0.999990207, -0.544021111, -0.999990207, 0.412118485, 0.989358247, 0.412118485, 0.141120008, 0.909297427, 0.141120008, 0.841470985, 0, 0.841470985, 0.141120008, 0.909297427, 0.141120008, -0.958924275, -0.756802495, -0.958924275, 0.141120008, 0.909297427, 0.141120008},
       {-1.5022139, -1.62329926, 4.43692105, 4.79455735, -1.50600959, -1.62740091, 0.988704618, 1.06839877, -2.92022617, -3.15560987, 0.991202812, 1.07109833}},
      {tg::PadMode::Replicate, {1, 2, 3}, {3, -1}, std::nullopt, {1, 2, 5},
       {0, 0, 0, 0, 0.841470985, 0.141120008, 0.141120008, 0.141120008, 0.141120008, -0.756802495},
       {0.134162973, -0.653643621, 0, 1.85223469, -0.911130262, 0}},
      {tg::PadMode::Replicate, {2, 3, 3}, {1, 0, 2, 1}, std::nullopt, {2, 6, 4},
       {0, 0, 0.841470985, 0.909297427, 0, 0, 0.841470985, 0.909297427, 0, 0, 0.841470985, 0.909297427, 0.141120008, 0.141120008, -0.756802495, -0.958924275, -0.279415498, -0.279415498, 0.656986599, 0.989358247, -0.279415498, -0.279415498, 0.656986599, 0.989358247, 0.412118485, 0.412118485, -0.544021111, -0.999990207, 0.412118485, 0.412118485, -0.544021111, -0.999990207, 0.412118485, 0.412118485, -0.544021111, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.990607356, 0.65028784, 0.65028784, -0.287903317, -0.961397492, 0.65028784, 0.65028784, -0.287903317, -0.961397492},
       {0.113690575, -0.295048079, -0.231664544, 1.75130074, 0.136737218, -0.759687913, -1.37247002, -0.339644118, 0.455871598, 0.525665036, -0.0473995026, -0.281088656, 0.637450362, 0.955073644, 0.266642932, -0.129112042, -0.83216326, -0.437222168}},
      {tg::PadMode::Replicate, {1, 1, 2, 3, 2}, {1, 1, 0, 2, 1, 0}, std::nullopt, {1, 1, 3, 5, 4},
       {0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0.141120008, 0.141120008, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.756802495, -0.756802495, -0.958924275, -0.958924275, 0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0.141120008, 0.141120008, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.279415498, -0.279415498, 0.656986599, 0.656986599, 0.989358247, 0.989358247, 0.412118485, 0.412118485, -0.544021111, -0.544021111, -0.999990207, -0.999990207, -0.544021111, -0.544021111, -0.999990207, -0.999990207, -0.544021111, -0.544021111, -0.999990207, -0.999990207},
       {1.40065511, -2.93893318, 1.04540038, 2.06885305, -0.790418794, 0.729872705, -1.65427734, 0.155127987, 1.5251653, -1.42451341, 0.332261572, 0.248037061}},
      {tg::PadMode::Circular, {1, 2, 3}, {1, 2}, std::nullopt, {1, 2, 6},
       {0.909297427, 0, 0.841470985, 0.909297427, 0, 0.841470985, -0.958924275, 0.141120008, -0.756802495, -0.958924275, 0.141120008, -0.756802495},
       {-0.113341315, -0.132484651, 0.0100075034, -0.0851692747, -0.141074336, 0.0490400248}},
      {tg::PadMode::Circular, {1, 2, 3}, {-1, 2}, std::nullopt, {1, 2, 4},
       {0.841470985, 0.909297427, 0.841470985, 0.909297427, -0.756802495, -0.958924275, -0.756802495, -0.958924275},
       {0, 0.583853163, -0.449690191, 0, 0.306526666, 1.03756444}},
      {tg::PadMode::Circular, {1, 2, 3}, {2, -1}, std::nullopt, {1, 2, 4},
       {0, 0.841470985, 0, 0.841470985, 0.141120008, -0.756802495, 0.141120008, -0.756802495},
       {0.583853163, -0.449690191, 0, 0.306526666, 1.03756444, 0}},
      {tg::PadMode::Circular, {1, 1, 3, 3}, {1, 1, 2, 0}, std::nullopt, {1, 1, 5, 5},
       {-0.958924275, 0.141120008, -0.756802495, -0.958924275, 0.141120008, 0.989358247, -0.279415498, 0.656986599, 0.989358247, -0.279415498, 0.909297427, 0, 0.841470985, 0.909297427, 0, -0.958924275, 0.141120008, -0.756802495, -0.958924275, 0.141120008, 0.989358247, -0.279415498, 0.656986599, 0.989358247, -0.279415498},
       {0.141162916, 0.843853959, 0.0683752524, -0.0822961771, -0.691310175, -0.0893637012, -0.0745102281, -0.246058572, 0.0134111931}},
      {tg::PadMode::Circular, {1, 1, 2, 2, 3}, {1, 0, 0, 1, 1, 1}, std::nullopt, {1, 1, 4, 3, 4},
       {0.989358247, -0.279415498, 0.656986599, 0.989358247, -0.999990207, 0.412118485, -0.544021111, -0.999990207, 0.989358247, -0.279415498, 0.656986599, 0.989358247, 0.909297427, 0, 0.841470985, 0.909297427, -0.958924275, 0.141120008, -0.756802495, -0.958924275, 0.909297427, 0, 0.841470985, 0.909297427, 0.989358247, -0.279415498, 0.656986599, 0.989358247, -0.999990207, 0.412118485, -0.544021111, -0.999990207, 0.989358247, -0.279415498, 0.656986599, 0.989358247, 0.909297427, 0, 0.841470985, 0.909297427, -0.958924275, 0.141120008, -0.756802495, -0.958924275, 0.909297427, 0, 0.841470985, 0.909297427},
       {1.65045356, -0.340327909, 0.10560217, -1.26250262, 0.260331393, -0.0807796223, 0.607098109, -1.45686932, -0.0684954784, -0.464395344, 1.11442174, 0.052395125}},
      {tg::PadMode::Constant, {2, 3, 3}, {1, -1, 2, 0}, 0.5, {2, 5, 3},
       {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.841470985, 0.5, 0.141120008, -0.756802495, 0.5, -0.279415498, 0.656986599, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.412118485, -0.544021111, 0.5, -0.536572918, 0.420167037, 0.5, 0.65028784, -0.287903317},
       {0.753902254, -0.145500034, 0, -0.839071529, 0.00442569799, 0, 0.907446781, 0.136737218, 0, -0.999960826, -0.53283302, 0, 0.991202812, 0.646919322, 0, -0.962605866, -0.74805753, 0}},
      {tg::PadMode::Constant, {2, 2, 2}, {1, 1, 1, 1, 1, 1}, std::nullopt, {4, 4, 4},
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.841470985, 0, 0, 0.909297427, 0.141120008, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.756802495, -0.958924275, 0, 0, -0.279415498, 0.656986599, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
       {-0.54772926, -0.999960826, 0.991202812, 0.646919322, 0.765414052, 0.955073644, -0.987339278, -0.399985315}},
  };
  for (const Case& c : cases) {
    INFO("mode ", std::string(tg::pad_mode_name(c.mode)), ", input ", tg::shape_str(c.shape), ", pads ", c.pads.size());
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
      const Tensor x = seq(c.shape, sin_).to(dtype).set_requires_grad();
      const Tensor y = tg::pad(x, c.pads, c.mode, c.value);
      REQUIRE(y.shape() == c.out);
      REQUIRE(y.dtype() == dtype);
      y.backward(seq(c.out, cos_).to(dtype));
      const double tol = dtype == tg::kFloat64 ? 1e-8 : 1e-6;  // the goldens have 9 digits
      check_close(y, c.y, tol);
      check_close(x.grad(), c.dx, tol);
    }
  }
}

TEST_CASE("pad on every mode, rank and padding: forward against the definition, backward its adjoint") {
  // Random paddings (negative, zero, up to past the dim's size) of the last 1-3 dims of inputs
  // with 0-2 dims before them and 1-4 values a dim: each either matches the definition (and its
  // backward the adjoint: <pad(x), g> = <x, dx>) or is refused, exactly when the definition says so.
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> size(1, 4), lead(0, 2), pairs_of(1, 3);
  std::uniform_int_distribution<std::int64_t> amount(-3, 4);
  std::size_t checked = 0, refused = 0;
  for (tg::PadMode mode : {tg::PadMode::Constant, tg::PadMode::Reflect, tg::PadMode::Replicate, tg::PadMode::Circular})
    for (int trial = 0; trial < 300; ++trial) {
      const std::size_t pairs = pairs_of(rng), before = mode == tg::PadMode::Constant ? lead(rng) : 1 + lead(rng) % 2;
      tg::Shape shape;
      for (std::size_t d = 0; d < before + pairs; ++d) shape.push_back(size(rng));
      std::vector<std::int64_t> pads;
      for (std::size_t k = 0; k < 2 * pairs; ++k) pads.push_back(amount(rng));
      const double value = mode == tg::PadMode::Constant ? 0.25 : 0.0;
      const Tensor x = uniform64(shape).set_requires_grad();
      const auto expected = reference_pad(x, pads, mode, value);
      std::ostringstream what;
      what << tg::pad_mode_name(mode) << " input " << tg::shape_str(shape) << " pads";
      for (auto p : pads) what << ' ' << p;
      INFO(what.str());
      if (!expected) {
        ++refused;
        CHECK_THROWS_AS(tg::pad(x, pads, mode, mode == tg::PadMode::Constant ? std::optional(value) : std::nullopt),
                        tg::Error);
        continue;
      }
      ++checked;
      const Tensor y = tg::pad(x, pads, mode, mode == tg::PadMode::Constant ? std::optional(value) : std::nullopt);
      REQUIRE(y.shape() == expected->shape());
      check_close(y, expected->to_vector<double>(), 0.0);
      const Tensor g = uniform64(y.shape());
      y.backward(g);
      // The constant's own part of the output does not depend on x: taken off before the adjoint.
      const Tensor linear = y - *reference_pad(tg::zeros_like(x), pads, mode, value);
      CHECK(std::abs(dot(linear, g) - dot(x, x.grad())) <= 1e-12 * (1.0 + std::abs(dot(linear, g))));
      // float32 moves the same values, and its backward sums the same terms (to float rounding).
      const Tensor x32 = x.detach().to(tg::kFloat32).set_requires_grad();
      const Tensor y32 = tg::pad(x32, pads, mode, mode == tg::PadMode::Constant ? std::optional(value) : std::nullopt);
      check_close(y32, expected->to(tg::kFloat32).to_vector<double>(), 0.0);
      y32.backward(g.to(tg::kFloat32));
      check_close(x32.grad(), x.grad().to_vector<double>(), 1e-5);
    }
  CHECK(checked > 400);  // the draws above: most are valid, and many are not
  CHECK(refused > 100);
}

TEST_CASE("gradcheck: pad in every mode") {
  tg::manual_seed(5);
  struct Case {
    tg::PadMode mode;
    tg::Shape shape;
    std::vector<std::int64_t> pads;
  };
  const std::vector<Case> cases = {
      {tg::PadMode::Constant, {2, 3, 4}, {1, -1, 0, 2}},
      {tg::PadMode::Reflect, {2, 3, 4}, {2, 3, 1, -1}},
      {tg::PadMode::Replicate, {1, 2, 3, 3}, {3, 1, -1, 2}},
      {tg::PadMode::Circular, {1, 2, 3, 4}, {3, -1, 1, 2}},
      {tg::PadMode::Reflect, {1, 1, 3, 2, 3}, {1, 2, 1, 0, 2, 1}},
      {tg::PadMode::Circular, {2, 3, 2, 3}, {2, 3, 1, 1, 0, 2}},
  };
  for (const Case& c : cases) {
    INFO("mode ", std::string(tg::pad_mode_name(c.mode)), ", input ", tg::shape_str(c.shape));
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return tg::pad(in[0], c.pads, c.mode); },
                    {uniform64(c.shape)});
  }
}

TEST_CASE("pad: the same bits for 1 and 2 threads, int64 values, no padding") {
  // Large enough for several tasks: one plane (nothing before the padded dims to split by), and
  // many small ones.
  for (const tg::Shape& shape : {tg::Shape{1, 300, 400}, tg::Shape{64, 32, 20, 20}}) {
    std::vector<Tensor> runs;
    for (int threads : {1, 2}) {
      tg::set_num_threads(threads);
      tg::manual_seed(11);
      const Tensor x = tg::randn(shape).set_requires_grad();
      const Tensor y = tg::pad(x, {3, 2, 2, 3}, tg::PadMode::Reflect);
      y.backward(tg::randn(y.shape()));
      runs.push_back(y);
      runs.push_back(x.grad());
    }
    tg::set_num_threads(1);
    CHECK(tg_test::bitwise_equal(runs[0], runs[2]));
    CHECK(tg_test::bitwise_equal(runs[1], runs[3]));
  }
  const Tensor labels = tg::Tensor(std::vector<std::int64_t>{1, 2, 3}, {1, 3});
  CHECK(tg::pad(labels, {1, 1}, tg::PadMode::Constant, -1.0).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{-1, 1, 2, 3, -1});
  CHECK(tg::pad(labels, {2, 0}, tg::PadMode::Replicate).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, 1, 1, 2, 3});
  const Tensor x = uniform64({2, 3}).set_requires_grad();
  const Tensor same = tg::pad(x, {});  // a copy, as PyTorch's
  CHECK(same.shape() == x.shape());
  check_close(same, x.to_vector<double>(), 0.0);
  CHECK(tg::pad(tg::full({}, 2.5), {}).item() == 2.5);
}

TEST_CASE("pad: errors name the mode, the padding and the input") {
  const Tensor x = tg::randn({1, 2, 3});
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const tg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message([&] { tg::pad(x, {1, 1, 1}); }) == "pad: padding holds (left, right) pairs, got 3 values");
  CHECK(message([&] { tg::pad(x, {1, 1, 1, 1, 1, 1, 1, 1}); }) ==
        "pad: 4 (left, right) pairs of padding for an input of 3 dims [1, 2, 3]");
  CHECK(message([&] { tg::pad(x, {1, 1}, tg::PadMode::Reflect, 2.0); }) ==
        "pad: reflect padding takes no value (only constant padding does)");
  CHECK(message([&] { tg::pad(x, {1, 1, 1, 1, 1, 1}, tg::PadMode::Replicate); }) ==
        "pad: replicate padding of the last 3 dims takes a 4-D or 5-D input (unbatched or batched), got [1, 2, 3]");
  CHECK(message([&] { tg::pad(tg::randn({3}), {1, 1}, tg::PadMode::Circular); }) ==
        "pad: circular padding of the last 1 dims takes a 2-D or 3-D input (unbatched or batched), got [3]");
  CHECK(message([&] { tg::pad(x, {3, 0}, tg::PadMode::Reflect); }) ==
        "pad: reflect padding (3, 0) must be less than the size of dim 2 of input [1, 2, 3]");
  CHECK(message([&] { tg::pad(x, {-3, 0}, tg::PadMode::Replicate); }) ==
        "pad: replicate padding (-3, 0) leaves dim 2 of input [1, 2, 3] with 0 values (at least 1 needed)");
  CHECK(message([&] { tg::pad(x, {-4, 0}); }) == "pad: constant padding (-4, 0) leaves dim 2 of input [1, 2, 3] with -1 values");
  CHECK(message([&] { tg::pad(x, {4, 0}, tg::PadMode::Circular); }) ==
        "pad: circular padding (4, 0) of dim 2 of input [1, 2, 3] wraps around more than once (3 values to wrap)");
  CHECK(message([&] { tg::pad(x, {2, -2}, tg::PadMode::Circular); }) ==
        "pad: circular padding (2, -2) of dim 2 of input [1, 2, 3] wraps around more than once (1 values to wrap)");
  CHECK(message([&] { tg::pad(tg::randn({1, 2, 0}), {1, 1}, tg::PadMode::Reflect); }) ==
        "pad: reflect padding needs values to repeat, but dim 2 of input [1, 2, 0] is empty");
  CHECK(message([&] { tg::pad(x, {INT64_MAX, 1}); }) == "pad: padding (9223372036854775807, 1) of dim 2 of input [1, 2, 3] is out of range");
  CHECK(message([&] { tg::pad(x, {1 << 30, 1 << 30, 1 << 30, 1 << 30}); }).starts_with("pad: "));
  CHECK(message([&] { tg::pad(tg::Tensor(std::vector<std::int64_t>{1}, {1}), {1, 0}, tg::PadMode::Constant, 1e300); }) ==
        "pad: value 1e+300 does not fit an int64 input");
  // Edge cases that are valid: an empty result, an empty input padded with the constant.
  CHECK(tg::pad(x, {-3, 0}).shape() == tg::Shape{1, 2, 0});
  CHECK(tg::pad(x, {-3, 0}, tg::PadMode::Circular).shape() == tg::Shape{1, 2, 0});
  check_close(tg::pad(tg::randn({1, 0}), {1, 1}, tg::PadMode::Constant, 2.0), {2.0, 2.0}, 0.0);
}

TEST_CASE("padding layers: PyTorch's names, printing, shapes, clone and errors") {
  const Tensor x = uniform64({2, 3, 4, 5});
  nn::ReflectionPad2d reflect(std::array<std::int64_t, 4>{1, 2, 0, 3});
  check_close(reflect(x), tg::pad(x, {1, 2, 0, 3}, tg::PadMode::Reflect).to_vector<double>(), 0.0);
  nn::ConstantPad1d constant(std::array<std::int64_t, 2>{2, 0}, -1.5);
  check_close(constant(x), tg::pad(x, {2, 0}, tg::PadMode::Constant, -1.5).to_vector<double>(), 0.0);
  nn::ZeroPad2d zero(1);
  CHECK(zero(x).shape() == tg::Shape{2, 3, 6, 7});
  CHECK(nn::ZeroPad2d(1)(tg::randn({4, 5})).shape() == tg::Shape{6, 7});  // F.pad's rule: any rank >= 2
  CHECK(nn::ReplicationPad3d(1)(tg::randn({2, 2, 2, 2})).shape() == tg::Shape{2, 4, 4, 4});
  CHECK(nn::CircularPad1d(2)(tg::randn({3, 4})).shape() == tg::Shape{3, 8});
  std::ostringstream printed;
  printed << reflect << ' ' << constant << ' ' << zero << ' ' << nn::CircularPad3d(1);
  CHECK(printed.str() ==
        "ReflectionPad2d((1, 2, 0, 3)) ConstantPad1d(padding=(2, 0), value=-1.5) ZeroPad2d((1, 1, 1, 1)) "
        "CircularPad3d((1, 1, 1, 1, 1, 1))");
  const auto copy = reflect.clone();
  std::ostringstream copied;
  copied << *copy;
  CHECK(copied.str() == "ReflectionPad2d((1, 2, 0, 3))");
  CHECK_THROWS_WITH_AS(nn::ReflectionPad2d(1)(tg::randn({4, 5})),
                       "ReflectionPad2d: expected a 3-D (unbatched) or 4-D (batched) input, got [4, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::ConstantPad3d(1, 0.0)(tg::randn({4, 5})),
                       "ConstantPad3d: expected an input with at least 3 dims, got [4, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::ReflectionPad1d(3)(tg::randn({2, 3})),
                       "pad: reflect padding (3, 3) must be less than the size of dim 1 of input [2, 3]", tg::Error);
}

TEST_CASE("Conv padding_mode matches PyTorch") {
  // torch 1.13: the weight sin(i)/4 and the bias cos(i) over their flattened shapes, the input
  // sin(i) as above, the output's gradient cos(i):
  //   conv = torch.nn.Conv2d(2, 3, (3, 2), padding=(2, 1), padding_mode=mode).double()
  //   conv.weight.data = seq(conv.weight.shape, lambda i: math.sin(i) / 4); conv.bias.data = seq((3,), math.cos)
  //   x = seq((1, 2, 4, 3), math.sin).requires_grad_(); y = conv(x); y.backward(seq(tuple(y.shape), math.cos))
  //   print(y.sum().item(), (y * y).sum().item(), x.grad.flatten().tolist()[:6], conv.weight.grad.sum().item())
  //   (and Conv1d(2, 3, 4, padding='same', padding_mode='reflect') on an unbatched (2, 6) input)
  struct Case {
    nn::PaddingMode mode;
    const char* name;
    double sum, sum_of_squares;
    std::vector<double> dx;
    double dweight_sum;
  };
  const std::vector<Case> cases = {
      {nn::PaddingMode::Reflect, "reflect", 27.1176044996, 72.7862899759,
       {-1.07620144473, -1.37856252473, 0.331783476331, 0.973795735289, 1.47530237205, -0.324629929105}, -10.664757841},
      {nn::PaddingMode::Replicate, "replicate", 33.6926880074, 79.0150864262,
       {-1.07113070126, -0.106114928127, 0.816647303167, 1.55094091408, -0.182868298012, -1.89747703555}, 27.4360401733},
      {nn::PaddingMode::Circular, "circular", 28.7022454499, 63.4708221079,
       {-0.43117434784, -0.366165420525, -0.512708669893, 0.0396988452264, -0.0794412292201, 0.0236775176182},
       -6.96940650299},
  };
  auto seq_into = [](Tensor& t, double scale) {
    std::vector<double> v(t.numel());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(double(i)) * scale;
    t = Tensor(v, t.shape()).set_requires_grad();
  };
  for (const Case& c : cases) {
    INFO("padding_mode ", c.name);
    nn::Conv2d conv(nn::Conv2dOptions(2, 3, {3, 2}).padding({2, 1}).padding_mode(c.mode));
    conv.to(tg::kFloat64);
    seq_into(conv.weight, 0.25);
    conv.bias = seq({3}, cos_).set_requires_grad();
    const Tensor x = seq({1, 2, 4, 3}, sin_).set_requires_grad();
    const Tensor y = conv(x);
    REQUIRE(y.shape() == tg::Shape{1, 3, 6, 4});
    y.backward(seq(y.shape(), cos_));
    CHECK(tg::sum(y).item() == doctest::Approx(c.sum).epsilon(1e-10));
    CHECK(tg::sum(y * y).item() == doctest::Approx(c.sum_of_squares).epsilon(1e-10));
    std::vector<double> dx = x.grad().to_vector<double>();
    dx.resize(6);
    check_close(Tensor(dx, {6}), c.dx, 1e-10);
    CHECK(tg::sum(conv.weight.grad()).item() == doctest::Approx(c.dweight_sum).epsilon(1e-10));
    std::ostringstream printed;
    printed << conv;
    CHECK(printed.str() == std::string("Conv2d(2, 3, kernel_size=(3, 2), stride=(1, 1), padding=(2, 1), padding_mode=") +
                               c.name + ")");
  }
  nn::Conv1d conv1(nn::Conv1dOptions(2, 3, 4).padding(nn::Padding::Same).padding_mode(nn::PaddingMode::Reflect));
  conv1.to(tg::kFloat64);
  seq_into(conv1.weight, 0.25);
  conv1.bias = seq({3}, cos_).set_requires_grad();
  const Tensor x = seq({2, 6}, sin_).set_requires_grad();
  const Tensor y = conv1(x);
  y.backward(seq(y.shape(), cos_));
  check_close(y, {1.28265488491, 1.28264658213, 0.717042969934, 0.411588746258, 0.629051560727, 1.07956125266,
                  0.61272999408, 0.886557861657, 1.041534594, 0.735680672183, 0.368331494556, 0.222174080222,
                  -0.719878183628, -0.799553808823, -0.279048436218, 0.115409299386, 0.00484512044549,
                  -0.403132754035},
              1e-10);
  check_close(x.grad(), {0.227629575971, 0.04245873732, -0.629301433281, -0.495455590768, 0.361797289493,
                         0.435979664493, 0.0413865914534, 0.309594479024, 0.537997876008, 0.117965839666,
                         -0.583831803987, -0.435122258076},
              1e-10);
  std::ostringstream printed;
  printed << conv1;
  CHECK(printed.str() == "Conv1d(2, 3, kernel_size=(4,), stride=(1,), padding=same, padding_mode=reflect)");
  // gradcheck through the padding, every mode; the layer names itself when the padding is too large.
  for (nn::PaddingMode mode : {nn::PaddingMode::Reflect, nn::PaddingMode::Replicate, nn::PaddingMode::Circular}) {
    nn::Conv2d conv(nn::Conv2dOptions(2, 2, 3).padding({1, 2}).stride({1, 2}).padding_mode(mode));
    tg_test::check_module(conv, uniform64({2, 2, 4, 5}));
  }
  nn::Conv2d too_far(nn::Conv2dOptions(1, 1, 3).padding(3).padding_mode(nn::PaddingMode::Reflect));
  CHECK_THROWS_WITH_AS(too_far(tg::randn({1, 1, 3, 3})),
                       "Conv2d: pad: reflect padding (3, 3) must be less than the size of dim 2 of input [1, 1, 3, 3]",
                       tg::Error);
}
