// pixel_shuffle, pixel_unshuffle and their layers: PyTorch's values, the definition over ranks and
// factors in both dtypes, each the other's inverse, gradcheck, printing and errors.
#include "helpers.hpp"

#include <sstream>

using tg::Tensor;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

// Golden values: /usr/bin/python3 with torch 1.13: F.pixel_shuffle(seq((1, 8, 2, 3), torch.sin), 2)
TEST_CASE("pixel_shuffle matches PyTorch") {
  const Tensor y = tg::pixel_shuffle(tg_test::seq({1, 8, 2, 3}, tg_test::sin_), 2);
  CHECK(y.shape() == tg::Shape{1, 2, 4, 6});
  tg_test::check_close(
      y, {0, -0.279415498, 0.841470985, 0.656986599, 0.909297427, 0.989358247, -0.536572918, -0.750987247,
          0.420167037, 0.14987721, 0.990607356, 0.912945251, 0.141120008, 0.412118485, -0.756802495, -0.544021111,
          -0.958924275, -0.999990207, 0.65028784, 0.836655639, -0.287903317, -0.00885130929, -0.961397492,
          -0.846220404, -0.905578362, -0.988031624, -0.13235175, -0.404037645, 0.76255845, 0.551426681,
          -0.991778853, -0.916521548, -0.643538133, -0.831774743, 0.296368579, 0.0177019251, 0.956375928,
          0.99991186, 0.270905788, 0.529082686, -0.663633884, -0.428182669, 0.963795386, 0.850903525, 0.74511316,
          0.901788348, -0.158622669, 0.123573123},
      1e-8);
}

// Ranks 3 to 5, factors 1 to 5, odd planes, both dtypes: every value where the definition puts it,
// and unshuffle(shuffle(x)) == x bitwise.
TEST_CASE("pixel_shuffle and pixel_unshuffle: the definition on every rank and factor, each the other's inverse") {
  const std::vector<tg::Shape> planes{{1, 1}, {3, 5}, {4, 4}, {7, 2}};
  const std::vector<tg::Shape> leads{{}, {2}, {2, 3}};
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (const tg::Shape& lead : leads)
      for (const tg::Shape& plane : planes)
        for (std::int64_t r : {1, 2, 3, 5})  // 5: past the sizes compiled apart
          for (std::size_t c : {1, 2}) {
            tg::Shape shape = lead;
            const std::size_t h = plane[0], w = plane[1], rr = std::size_t(r), channels = c * rr * rr;
            for (std::size_t d : {channels, h, w}) shape.push_back(d);
            INFO(tg::shape_str(shape), " r ", r, " ", tg::dtype_name(dtype));
            const Tensor x = tg::randn(shape, dtype);
            const Tensor y = tg::pixel_shuffle(x, r);
            tg::Shape expected_shape = lead;
            for (std::size_t d : {c, h * rr, w * rr}) expected_shape.push_back(d);
            REQUIRE(y.shape() == expected_shape);
            const std::vector<double> xs = tg_test::flat(x), ys = tg_test::flat(y);
            const std::size_t batches = xs.size() / (channels * h * w);
            bool placed = true;
            for (std::size_t b = 0; b < batches; ++b)
              for (std::size_t k = 0; k < channels; ++k)
                for (std::size_t i = 0; i < h; ++i)
                  for (std::size_t j = 0; j < w; ++j) {
                    const std::size_t out_c = k / (rr * rr), di = k / rr % rr, dj = k % rr;
                    const double in = xs[((b * channels + k) * h + i) * w + j];
                    const double out = ys[((b * c + out_c) * h * rr + i * rr + di) * w * rr + j * rr + dj];
                    placed = placed && in == out;
                  }
            CHECK(placed);
            CHECK(tg_test::bitwise_equal(tg::pixel_unshuffle(y, r), x));
          }
}

TEST_CASE("PixelShuffle and PixelUnshuffle: gradcheck, printing and errors") {
  tg::manual_seed(41);
  CHECK_GRADCHECK([](const Inputs& x) { return tg::pixel_shuffle(x[0], 2); }, Inputs{tg_test::uniform64({2, 8, 2, 3})});
  CHECK_GRADCHECK([](const Inputs& x) { return tg::pixel_unshuffle(x[0], 3); }, Inputs{tg_test::uniform64({2, 3, 6})});
  nn::PixelShuffle shuffle(2);
  nn::PixelUnshuffle unshuffle(3);
  CHECK(shuffle(tg::randn({4, 2, 2})).shape() == tg::Shape{1, 4, 4});
  CHECK(unshuffle(tg::randn({2, 1, 3, 6, 9})).shape() == tg::Shape{2, 1, 27, 2, 3});
  std::ostringstream printed;
  printed << shuffle << unshuffle;
  CHECK(printed.str() == "PixelShuffle(upscale_factor=2)PixelUnshuffle(downscale_factor=3)");
  CHECK_THROWS_WITH_AS(tg::pixel_shuffle(tg::randn({2, 5, 4, 4}), 2),
                       "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                       "upscale_factor, but input.size(-3)=5 is not divisible by 4",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::pixel_shuffle(tg::randn({2, 4, 5, 4}), 0),
                       "pixel_shuffle expects a positive upscale_factor, but got 0", tg::Error);
  CHECK_THROWS_WITH_AS(tg::pixel_shuffle(tg::randn({4, 4}), 2),
                       "pixel_shuffle expects input of at least 3 dims (*, C, H, W), got [4, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::pixel_unshuffle(tg::randn({2, 3, 5, 4}), 2),
                       "pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)=5 is "
                       "not divisible by 2",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::pixel_unshuffle(tg::randn({2, 3, 4, 5}), 2),
                       "pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)=5 is not "
                       "divisible by 2",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::PixelShuffle(0), "PixelShuffle: upscale_factor must be positive, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(nn::PixelUnshuffle(-1), "PixelUnshuffle: downscale_factor must be positive, got -1", tg::Error);
}
