// conv_transpose1d / conv_transpose2d and the ConvTranspose layers: PyTorch's values and gradients,
// every geometry against the definition (each path of the convolution's input gradient that the
// forward runs through), gradcheck, thread counts, output_size, printing, errors.
#include "helpers.hpp"

#include <array>
#include <cmath>
#include <sstream>

using tg::Tensor;
using tg_test::check_close;
using tg_test::cos_;
using tg_test::seq;
using tg_test::sin_;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

namespace {

struct TransposeCase {
  tg::Shape x, w;  // (N, C, H, W), (C, O / groups, kH, kW)
  tg::ConvTranspose2dParams p;
};

std::string describe(const TransposeCase& k) {
  std::ostringstream s;
  s << "x " << tg::shape_str(k.x) << " w " << tg::shape_str(k.w) << " stride " << k.p.stride[0] << ","
    << k.p.stride[1] << " padding " << k.p.padding[0] << "," << k.p.padding[1] << " output_padding "
    << k.p.output_padding[0] << "," << k.p.output_padding[1] << " dilation " << k.p.dilation[0] << ","
    << k.p.dilation[1] << " groups " << k.p.groups;
  return s.str();
}

// y, dx, dw, db by the definition, in double, written as the scatter it is: each input value
// x[n, c, iy, ix] adds w[c, o, i, j] · x to y[n, group·og + o, iy·s - p + i·d, ix·s - p + j·d]
// where that lies inside the (Ho, Wo) output.
std::array<std::vector<double>, 4> transpose_by_definition(const TransposeCase& k, const std::vector<double>& x,
                                                           const std::vector<double>& w,
                                                           const std::vector<double>& b,
                                                           const std::vector<double>& gy, std::size_t oh,
                                                           std::size_t ow) {
  const std::size_t N = k.x[0], C = k.x[1], H = k.x[2], W = k.x[3], og = k.w[1], KH = k.w[2], KW = k.w[3];
  const std::size_t groups = std::size_t(k.p.groups), cg = C / groups, O = og * groups;
  std::vector<double> y(N * O * oh * ow, 0.0), dx(x.size(), 0.0), dw(w.size(), 0.0), db(O, 0.0);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t o = 0; o < O; ++o)
      for (std::size_t at = 0; at < oh * ow; ++at) {
        y[(n * O + o) * oh * ow + at] = b[o];
        db[o] += gy[(n * O + o) * oh * ow + at];
      }
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t iy = 0; iy < H; ++iy)
        for (std::size_t ix = 0; ix < W; ++ix)
          for (std::size_t o = 0; o < og; ++o)
            for (std::size_t i = 0; i < KH; ++i)
              for (std::size_t j = 0; j < KW; ++j) {
                const std::int64_t yy = std::int64_t(iy) * k.p.stride[0] - k.p.padding[0] + std::int64_t(i) * k.p.dilation[0];
                const std::int64_t yx = std::int64_t(ix) * k.p.stride[1] - k.p.padding[1] + std::int64_t(j) * k.p.dilation[1];
                if (yy < 0 || yx < 0 || yy >= std::int64_t(oh) || yx >= std::int64_t(ow)) continue;
                const std::size_t xi = ((n * C + c) * H + iy) * W + ix;
                const std::size_t wi = ((c * og + o) * KH + i) * KW + j;
                const std::size_t yi = ((n * O + (c / cg) * og + o) * oh + std::size_t(yy)) * ow + std::size_t(yx);
                y[yi] += w[wi] * x[xi];
                dx[xi] += w[wi] * gy[yi];
                dw[wi] += x[xi] * gy[yi];
              }
  return {y, dx, dw, db};
}

void check_against_definition(const std::vector<TransposeCase>& cases) {
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    const double tol = dtype == tg::kFloat64 ? 1e-12 : 1e-5;
    for (const TransposeCase& k : cases) {
      INFO(tg::dtype_name(dtype), " ", describe(k));
      const Tensor x = seq(k.x, sin_).to(dtype).set_requires_grad();
      const Tensor w = seq(k.w, cos_, 0.25).to(dtype).set_requires_grad();
      const Tensor b = (tg::arange(double(k.w[1] * std::size_t(k.p.groups)), tg::kFloat64) * 0.1).to(dtype)
                           .set_requires_grad();
      const Tensor y = tg::conv_transpose2d(x, w, b, k.p);
      // The size PyTorch gives.
      for (int d = 0; d < 2; ++d)
        REQUIRE(std::int64_t(y.size(2 + d)) == (std::int64_t(k.x[2 + d]) - 1) * k.p.stride[d] - 2 * k.p.padding[d] +
                                                     k.p.dilation[d] * (std::int64_t(k.w[2 + d]) - 1) +
                                                     k.p.output_padding[d] + 1);
      const Tensor gy = seq(y.shape(), cos_).to(dtype);
      y.backward(gy);
      const auto expected = transpose_by_definition(k, tg_test::flat(x), tg_test::flat(w), tg_test::flat(b),
                                                    tg_test::flat(gy), y.size(2), y.size(3));
      const Tensor got[4] = {y, x.grad(), w.grad(), b.grad()};
      const char* names[4] = {"y", "dx", "dw", "db"};
      for (int t = 0; t < 4; ++t) {
        INFO(names[t]);
        double scale = 1;  // relative to the largest value: dw sums many products
        for (double e : expected[std::size_t(t)]) scale = std::max(scale, std::abs(e));
        check_close(got[t], expected[std::size_t(t)], tol * 10 * scale);
      }
    }
  }
}

}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13, inputs as seq() builds them:
//   def seq(shape, f, scale=1.0): return (f(torch.arange(prod(shape), dtype=torch.float64)) * scale).reshape(shape)
//   x = seq(xs, torch.sin); w = seq(ws, torch.cos, 0.25); b = torch.arange(O) * 0.1
//   y = F.conv_transpose2d(x, w, b, ...) (or conv_transpose1d); y.backward(seq(y.shape, torch.cos))
//   A: xs (1, 2, 2, 3), ws (2, 2, 3, 2), stride (2, 1), padding (1, 0), output_padding (1, 0), groups 2, dilation (1, 2)
//   B: xs (2, 3, 4), ws (3, 2, 3), conv_transpose1d stride 3, padding 1, output_padding 2
//   C: xs (1, 1, 3, 3), ws (1, 1, 2, 2), stride 1, dilation 3, output_padding 2 (>= stride, < dilation)
TEST_CASE("conv_transpose1d and conv_transpose2d match PyTorch: values and gradients") {
  struct Golden {
    std::vector<double> y, dx, dw, db;
  };
  auto check = [](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Golden& g) {
    y.backward(seq(y.shape(), cos_));
    check_close(y, g.y, 1e-8);
    check_close(x.grad(), g.dx, 1e-8);
    check_close(w.grad(), g.dw, 1e-8);
    check_close(b.grad(), g.db, 1e-8);
  };
  {
    const Tensor x = seq({1, 2, 2, 3}, sin_).set_requires_grad();
    const Tensor w = seq({2, 2, 3, 2}, cos_, 0.25).set_requires_grad();
    const Tensor b = (tg::arange(4.0, tg::kFloat64) * 0.1).set_requires_grad();
    tg::ConvTranspose2dParams p;
    p.stride = {2, 1};
    p.padding = {1, 0};
    p.output_padding = {1, 0};
    p.groups = 2;
    p.dilation = {1, 2};
    const Tensor y = tg::conv_transpose2d(x, w, b, p);
    CHECK(y.shape() == tg::Shape{1, 4, 4, 5});
    check(x, w, b, y,
          {{0, -0.0875438721, -0.0946003119, -0.20826249, -0.225049407, 0.035280002, -0.326706159, -0.369258318,
            -0.0425521587, -0.0650439254, -0.0146816612, 0.0787352411, 0.0648363886, 0.187307198, 0.237331959,
            -0.0230605483, 0.123669781, 0.166706286, -0.0536690624, -0.0680026389, 0.1, 0.0693914858, 0.0669242984,
            -0.0916724197, -0.107122101, 0.13387481, -0.258178404, -0.294326371, -0.0417077527, -0.0797277242,
            0.0948667585, 0.127528697, 0.102736201, 0.272386414, 0.318426231, 0.0703975548, 0.258752857, 0.301307653,
            0.0991626552, 0.0989390227, 0.190448376, 0.22245863, 0.286887668, 0.0752238055, 0.0120991246,
            0.353838179, -0.0720609532, -0.135113376, 0.0313877921, -0.094918253, 0.214087984, 0.181403017,
            0.0875456723, 0.303321566, 0.389920118, 0.101332706, 0.330246744, 0.411062551, 0.237423666, 0.268790161,
            0.271493887, 0.367026111, 0.439195849, 0.210037304, 0.164524885, 0.437883319, 0.0459532272,
            0.0266788805, 0.0780149154, -0.0789644195, 0.34204454, 0.244498686, 0.141548145, 0.37449407, 0.436930974,
            0.196974415, 0.43599995, 0.495090174, 0.372468103, 0.433206951},
           {0.0107526577, 0.0261152837, 0.0174676383, 0.333469111, 0.170166316, -0.149586605, 0.0158494857,
            0.0382647937, 0.0254996268, -0.367630001, -0.327852482, 0.0133510965},
           {-1.40956403, 1.09021041, -0.85470374, -2.12620037, 2.37488954, -2.4375757, -0.0695726133, 1.40460641,
            -2.84062845, 0.878829472, -0.485937154, -2.36068895, 1.44393458, -0.361297356, -0.701122641, 2.72736274,
            -2.76740242, 1.23118928, 0.829796419, -1.44621025, 2.15924805, 0.677386558, -1.04946466, 2.76651972},
           {1.13152651, 0.383902771, -0.818198836, -1.05168731}});
  }
  {
    const Tensor x = seq({2, 3, 4}, sin_).set_requires_grad();
    const Tensor w = seq({3, 2, 3}, cos_, 0.25).set_requires_grad();
    const Tensor b = (tg::arange(2.0, tg::kFloat64) * 0.1).set_requires_grad();
    const Tensor y = tg::conv_transpose1d(x, w, b, 3, 1, 2);
    CHECK(y.shape() == tg::Shape{2, 2, 12});
    check(x, w, b, y,
          {{0.0818087123, 0.0613492208, 0.0671270511, 0.0264222835, -0.0385750097, 0.0454841499, -0.0532566709,
            -0.103033554, -0.0179766689, -0.0839716877, -0.0727635241, 0, 0.0218857807, 0.0311038758, 0.0318933831,
            0.0649786854, 0.130262423, 0.0419181371, 0.140270025, 0.201597838, 0.105343088, 0.17853729, 0.179524669,
            0.1, 0.0803716713, 0.0975041647, 0.050769226, 0.0653594872, 0.0198585372, 0.0655156258, -0.00974390799,
            -0.0760449377, 0.0200272614, -0.0758887991, -0.102033048, 0, 0.0295020667, -0.00117217059, 0.0560997397,
            0.0327026391, 0.0711784217, 0.0275693976, 0.0977760947, 0.17002744, 0.0656314172, 0.164894199,
            0.204493553, 0.1},
           {0.00532144766, -0.147371446, 0.152491579, -0.154559592, -0.00718737388, -0.135553866, 0.146894536,
            -0.155295111, -0.0191236533, -0.112938143, 0.129595959, -0.143659911, 0.0293651634, -0.104832216,
            0.087747181, -0.0689058854, 0.0715819118, -0.138978217, 0.125650152, -0.109807198, 0.108096486,
            -0.162053293, 0.153543904, -0.141961332},
           {-0.0395069683, -0.294729452, -0.564882805, -0.00414551196, 0.00995191732, -0.469997164, 0.28906824,
            -0.633453268, -0.718083023, 0.186996234, -0.294892118, -0.762484621, -0.338388254, 1.12283483,
            1.50362358, -0.240312279, 0.375556786, 1.46678358},
           {-0.215845171, 0.332776978}});
  }
  {
    const Tensor x = seq({1, 1, 3, 3}, sin_).set_requires_grad();
    const Tensor w = seq({1, 1, 2, 2}, cos_, 0.25).set_requires_grad();
    const Tensor b = (tg::arange(1.0, tg::kFloat64) * 0.1).set_requires_grad();
    tg::ConvTranspose2dParams p;
    p.dilation = {3, 3};
    p.output_padding = {2, 2};
    const Tensor y = tg::conv_transpose2d(x, w, b, p);
    CHECK(y.shape() == tg::Shape{1, 1, 8, 8});
    check(x, w, b, y,
          {{0, 0.210367746, 0.227324357, 0, 0.113662178, 0.122823874, 0, 0, 0.035280002, -0.189200624, -0.239731069,
            0.0190618664, -0.102225533, -0.129527249, 0, 0, -0.0698538745, 0.16424665, 0.247339562, -0.0377422095,
            0.0887428436, 0.133638135, 0, 0, 0, -0.0875438721, -0.0946003119, 0, -0.20826249, -0.225049407, 0, 0,
            -0.0146816612, 0.0787352411, 0.0997633258, -0.0349269373, 0.187307198, 0.237331959, 0, 0, 0.0290694689,
            -0.0683507237, -0.102929576, 0.0691548117, -0.162602951, -0.24486431, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0},
           {0.144449812, 0.181905955, 0.0521186021, 0.101095068, -0.0807464633, -0.188350068, -0.173868484,
            -0.158408729, 0.00269128056},
           {2.28996227, -2.35032323, 1.50575399, -1.23336358},
           {1.14611957}});
  }
}

// A sweep over geometries: planes 1×1 to 5×14, strides 1-3 (and unequal), kernels 1×1 to 5×3,
// padding 0, half the kernel and all but one of it, dilations 1 and 2, output_padding 0 and its
// largest allowed value (which at dilation 2 and stride 1 is past the stride), and channel
// settings that take each of the forward's paths (the convolution's input-gradient paths: the
// general GEMM + col2im, by phase at 8 channels a group on both sides, depthwise, with groups).
TEST_CASE("conv_transpose2d equals its definition on every geometry: forward, dx, dw, db, float32 and float64") {
  struct Channels {
    std::size_t in, out, groups;
  };
  const std::vector<Channels> channels{{3, 4, 1}, {8, 8, 1}, {16, 16, 2}, {4, 4, 4}, {8, 4, 4}, {6, 9, 3}};
  const std::vector<std::pair<std::size_t, std::size_t>> planes{{1, 1}, {2, 3}, {4, 4}, {5, 14}};
  const std::vector<std::pair<std::int64_t, std::int64_t>> strides{{1, 1}, {2, 2}, {3, 2}, {1, 2}};
  const std::vector<std::pair<std::size_t, std::size_t>> kernels{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 3}};
  std::vector<TransposeCase> cases;
  std::size_t rotate = 0;
  for (const auto& [h, w] : planes)
    for (const auto& [sh, sw] : strides)
      for (const auto& [kh, kw] : kernels)
        for (int pad = 0; pad < 3; ++pad)
          for (std::int64_t d : {1, 2})
            for (bool op : {false, true}) {
              const Channels c = channels[rotate++ % channels.size()];
              tg::ConvTranspose2dParams p;
              p.stride = {sh, sw};
              p.dilation = {d, d};
              p.groups = std::int64_t(c.groups);
              const std::int64_t k[2] = {std::int64_t(kh), std::int64_t(kw)};
              for (int a = 0; a < 2; ++a) {
                p.padding[a] = pad == 0 ? 0 : pad == 1 ? k[a] / 2 : k[a] - 1;
                p.output_padding[a] = op ? std::max(p.stride[a], d) - 1 : 0;
              }
              const std::int64_t in[2] = {std::int64_t(h), std::int64_t(w)};
              bool fits = true;
              for (int a = 0; a < 2; ++a)
                fits = fits && (in[a] - 1) * p.stride[a] - 2 * p.padding[a] + d * (k[a] - 1) + p.output_padding[a] >= 0;
              if (!fits) continue;
              cases.push_back({{2, c.in, h, w}, {c.in, c.out / c.groups, kh, kw}, p});
            }
  CHECK(cases.size() > 700);
  check_against_definition(cases);
}

// Wider channels, where the convolution's input gradient takes its faster paths: Winograd (3×3,
// stride 1, 32 channels a group), the direct kernels (16 channels), the gathered forward of the
// turned kernel (stride 1, 5×5), by phase (stride 2), and the upsampling layers of DCGAN and
// U-Net (4×4 stride 2 padding 1; 2×2 stride 2).
TEST_CASE("conv_transpose2d with many channels equals its definition (each fast path)") {
  std::vector<TransposeCase> cases;
  auto add = [&](std::size_t n, std::size_t c, std::size_t o, std::size_t groups, std::size_t hw, std::size_t k,
                 std::int64_t s, std::int64_t pad, std::int64_t op) {
    tg::ConvTranspose2dParams p;
    p.stride = {s, s};
    p.padding = {pad, pad};
    p.output_padding = {op, op};
    p.groups = std::int64_t(groups);
    cases.push_back({{n, c, hw, hw}, {c, o / groups, k, k}, p});
  };
  add(2, 32, 32, 1, 6, 3, 1, 1, 0);
  add(2, 64, 64, 2, 5, 3, 1, 1, 0);
  add(3, 16, 16, 1, 7, 3, 1, 1, 0);
  add(2, 16, 64, 1, 6, 3, 1, 0, 0);
  add(2, 64, 16, 1, 6, 3, 1, 2, 0);
  add(2, 16, 16, 1, 9, 5, 1, 2, 0);
  add(3, 16, 8, 1, 5, 4, 2, 1, 0);
  add(3, 32, 16, 1, 4, 4, 2, 1, 0);
  add(2, 16, 16, 1, 7, 3, 2, 1, 1);
  add(2, 8, 16, 1, 6, 2, 2, 0, 0);
  add(2, 32, 32, 32, 6, 3, 2, 1, 1);  // depthwise
  add(1, 16, 16, 1, 8, 3, 1, 1, 0);   // one sample
  check_against_definition(cases);
}

// ConvTranspose1d's rows (a height of 1): at stride 1 the convolution behind it reads its one row
// in place whatever the widths (one_row_phases in core/ops/conv.cpp), in its forward (the
// convolution's input gradient), its input gradient (a forward) and its weight gradient; stride 2
// as the control. Rows of 1 to 40 values, kernels of 1 to 5 columns, paddings from 0 to k - 1,
// dilation 2, output_padding, 3 and 8 channels a group, groups. Kernels of 3 at stride 1 also take
// Winograd F(4, 3) along the row, and so do 1 × 3 kernels over planes of 3 rows, row by row (the
// last cases).
TEST_CASE("conv_transpose2d over a single row equals its definition") {
  std::vector<TransposeCase> cases;
  for (std::size_t w : {1, 7, 40})
    for (std::int64_t k : {1, 3, 5})
      for (std::int64_t pad : {std::int64_t(0), k / 2, k - 1})
        for (std::int64_t d : {1, 2})
          for (std::int64_t s : {1, 2}) {
            tg::ConvTranspose2dParams p;
            p.stride = {1, s};
            p.padding = {0, pad};
            p.dilation = {1, d};
            p.output_padding = {0, (w + std::size_t(k)) % 2 ? std::max(s, d) - 1 : 0};
            if ((std::int64_t(w) - 1) * s - 2 * pad + d * (k - 1) + p.output_padding[1] < 0) continue;
            const std::size_t groups = (w + std::size_t(pad)) % 2 ? 2 : 1;
            p.groups = std::int64_t(groups);
            cases.push_back({{2, 3 * groups, 1, w}, {3 * groups, 4, 1, std::size_t(k)}, p});
            cases.push_back({{3, 8 * groups, 1, w}, {8 * groups, 8, 1, std::size_t(k)}, p});
            // Winograd F(4, 3) along the row (kernel 3, stride 1, 17 -> 20 channels; 32 a group;
            // 1024 outputs a channel of the convolution behind it, whose output is this input)
            if (k == 3 && s == 1 && d == 1) {
              const std::size_t in = groups == 1 ? 17 : 64;
              cases.push_back({{(1024 + w - 1) / w, in, 1, w}, {in, groups == 1 ? std::size_t(20) : std::size_t(32), 1, 3}, p});
            }
          }
  // 1 × 3 over planes of 3 rows: 72 -> 20 channels (the convolution behind it 20 -> 72), rows of
  // 120 and 121 values (30 and 31 tiles of the convolution's output, this input).
  for (std::size_t w : {120, 121}) {
    tg::ConvTranspose2dParams p;
    p.padding = {0, std::int64_t(w % 2)};
    cases.push_back({{3, 72, 3, w}, {72, 20, 1, 3}, p});
  }
  check_against_definition(cases);
}

// Samples of at most 16 input positions (the output positions of the convolution behind it) whose
// windows never cross rows (a kernel height of 1, no padding, stride or output_padding along the
// height) run several samples as one plane (samples_side_by_side in core/ops/conv.cpp), blocks of k
// samples, at least 2, and the samples left over where k does not divide N as a last block. Rows
// of 1 to 16 values, kernels 1 to 5, strides 1 and 2, dilation 2, padding and output_padding along
// the row, groups 2, 4 to 12 samples, 1 to 3 rows a plane, 3 to 40 channels; samples left over: 7
// (blocks of 3, 3 and 1 left), 23 (four of 5, 3 left), 38 rows of 16 (four of 9, 2 left); as
// controls 2 samples (one block), a kernel of 2 rows, stride 2 and output_padding along the height.
// Then the bits of y, dx, dw and db at one and two threads over 64 samples in 2 blocks and 131 in
// four of 32 and 3 left.
TEST_CASE("conv_transpose2d over samples side by side (rows of few inputs) equals its definition, the same bits at 1 and 2 threads") {
  std::vector<TransposeCase> cases;
  std::size_t variant = 0;
  for (std::size_t w : {1, 2, 3, 5, 8, 12, 16})
    for (std::int64_t k : {1, 2, 3, 5})
      for (std::int64_t s : {1, 2}) {
        ++variant;
        tg::ConvTranspose2dParams p;
        const std::int64_t d = variant % 5 == 2 ? 2 : 1;
        p.stride = {1, s};
        p.padding = {0, variant % 3 == 0 ? k / 2 : 0};
        p.dilation = {1, d};
        p.output_padding = {0, variant % 2 && std::max(s, d) > 1 ? 1 : 0};
        if ((std::int64_t(w) - 1) * s - 2 * p.padding[1] + d * (k - 1) + p.output_padding[1] < 0) continue;
        const std::size_t groups = variant % 4 == 1 ? 2 : 1, c = variant % 2 ? 20 : 3 * groups;
        p.groups = std::int64_t(groups);
        const std::size_t n = std::vector<std::size_t>{4, 6, 8, 12}[variant % 4];
        const std::size_t h = variant % 6 == 1 ? 3 : variant % 6 == 4 ? 2 : 1;
        const std::size_t o = std::vector<std::size_t>{2, 8, 20}[variant % 3];
        cases.push_back({{n, c, h, w}, {c, o, 1, std::size_t(k)}, p});
      }
  tg::ConvTranspose2dParams plain, tall, up;
  plain.padding = {0, 1};
  tall.padding = {0, 1};
  up.stride = {2, 1};
  up.output_padding = {1, 0};
  cases.push_back({{7, 16, 1, 4}, {16, 24, 1, 3}, plain});    // 3, 3 and 1 left
  cases.push_back({{23, 8, 2, 3}, {8, 12, 1, 3}, plain});     // four of 5, 3 left
  cases.push_back({{38, 16, 1, 16}, {16, 24, 1, 3}, plain});  // four of 9, 2 left
  cases.push_back({{2, 16, 1, 4}, {16, 24, 1, 3}, plain});  // one block: apart
  cases.push_back({{6, 8, 2, 3}, {8, 12, 2, 3}, tall});     // 2 kernel rows
  cases.push_back({{6, 8, 2, 3}, {8, 12, 1, 3}, up});       // stride and output_padding along the height
  check_against_definition(cases);

  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    INFO(tg::dtype_name(dtype));
    for (std::size_t n : {64, 131}) {
    INFO(n, " samples");
    std::vector<Tensor> runs[2];
    for (int threads : {1, 2}) {
      tg::set_num_threads(threads);
      const Tensor x = seq({n, 24, 1, 4}, sin_).to(dtype).set_requires_grad();
      const Tensor wt = seq({24, 40, 1, 4}, cos_, 0.25).to(dtype).set_requires_grad();
      const Tensor b = seq({40}, sin_).to(dtype).set_requires_grad();
      tg::ConvTranspose2dParams p;
      p.stride = {1, 2};
      p.padding = {0, 1};
      const Tensor y = tg::conv_transpose2d(x, wt, b, p);
      y.backward(seq(y.shape(), cos_).to(dtype));
      runs[threads - 1] = {y, x.grad(), wt.grad(), b.grad()};
    }
    tg::set_num_threads(1);
    for (std::size_t i = 0; i < 4; ++i) CHECK(tg_test::bitwise_equal(runs[0][i], runs[1][i]));
    }
  }
}

TEST_CASE("gradcheck: conv_transpose1d, conv_transpose2d and the layers") {
  tg::manual_seed(22);
  tg::ConvTranspose2dParams p;
  p.stride = {2, 3};
  p.padding = {1, 0};
  p.output_padding = {1, 2};
  p.dilation = {1, 2};
  p.groups = 2;
  auto op2 = [p](const Inputs& x) { return tg::conv_transpose2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), p); };
  CHECK_GRADCHECK(op2, Inputs{uniform64({2, 4, 3, 2}), uniform64({4, 1, 3, 2}), uniform64({2})});
  CHECK_GRADCHECK(op2, Inputs{uniform64({4, 2, 3}), uniform64({4, 3, 2, 2})});  // unbatched, no bias
  CHECK_GRADCHECK([](const Inputs& x) { return tg::conv_transpose1d(x[0], x[1], x[2], 2, 1, 1, 1, 2); },
                  Inputs{uniform64({2, 3, 4}), uniform64({3, 2, 3}), uniform64({2})});
  // 6 samples of rows of 2: blocks of 3 samples side by side
  CHECK_GRADCHECK([](const Inputs& x) { return tg::conv_transpose1d(x[0], x[1], x[2], 2, 1, 1, 1, 1); },
                  Inputs{uniform64({6, 3, 2}), uniform64({3, 2, 4}), uniform64({2})});
  // 35 samples of rows of 16: four blocks of 8 samples, then the 3 left over side by side
  CHECK_GRADCHECK([](const Inputs& x) { return tg::conv_transpose1d(x[0], x[1], x[2], 1, 1, 0, 1, 1); },
                  Inputs{uniform64({35, 1, 16}), uniform64({1, 3, 3}), uniform64({3})});
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(3, 4, 3).stride(2).padding(1).output_padding(1));
  tg_test::check_module(up, uniform64({2, 3, 2, 3}));
  nn::ConvTranspose1d up1(nn::ConvTranspose1dOptions(4, 2, 2).stride(2).groups(2));
  tg_test::check_module(up1, uniform64({4, 3}));
}

TEST_CASE("conv_transpose2d: the same bits for 1 and 2 threads") {
  tg::manual_seed(5);
  const Tensor x = tg::randn({6, 16, 9, 9}), w = tg::randn({16, 8, 4, 4}), b = tg::randn({8});
  tg::ConvTranspose2dParams p;
  p.stride = {2, 2};
  p.padding = {1, 1};
  std::vector<Tensor> runs[2];
  for (int threads : {1, 2}) {
    tg::set_num_threads(threads);
    const Tensor xl = x.detach().set_requires_grad(), wl = w.detach().set_requires_grad(),
                 bl = b.detach().set_requires_grad();
    const Tensor y = tg::conv_transpose2d(xl, wl, bl, p);
    y.backward(tg::ones_like(y));
    runs[threads - 1] = {y, xl.grad(), wl.grad(), bl.grad()};
  }
  tg::set_num_threads(1);
  for (std::size_t i = 0; i < 4; ++i) CHECK(tg_test::bitwise_equal(runs[0][i], runs[1][i]));
}

TEST_CASE("ConvTranspose layers: PyTorch's names, shapes, init bounds, output_size, printing") {
  tg::manual_seed(3);
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(16, 8, 4).stride(2).padding(1));
  CHECK(up.weight.shape() == tg::Shape{16, 8, 4, 4});
  CHECK(up.bias.shape() == tg::Shape{8});
  const auto named = up.named_parameters();
  CHECK(named.size() == 2);
  CHECK(named.contains("weight"));
  CHECK(named.contains("bias"));
  // fan_in = weight.size(1) · kernel = 8 · 16 = 128, as PyTorch computes it.
  const double bound = 1.0 / std::sqrt(128.0);
  CHECK(tg::max(tg::abs(up.weight)).item() <= bound);
  CHECK(tg::max(tg::abs(up.weight)).item() > 0.9 * bound);
  CHECK(tg::max(tg::abs(up.bias)).item() <= bound);
  CHECK(up(tg::randn({2, 16, 7, 5})).shape() == tg::Shape{2, 8, 14, 10});
  CHECK(up(tg::randn({16, 7, 5})).shape() == tg::Shape{8, 14, 10});

  // output_size picks output_padding for this call: 3×3 stride 2 padding 1 on 4×4 gives 7 or 8.
  nn::ConvTranspose2d odd(nn::ConvTranspose2dOptions(2, 3, 3).stride(2).padding(1));
  nn::ConvTranspose2d even(nn::ConvTranspose2dOptions(2, 3, 3).stride(2).padding(1).output_padding({1, 0}));
  {
    tg::NoGradGuard no_grad;
    even.weight.values_mut<float>() = odd.weight.values<float>();
    even.bias.values_mut<float>() = odd.bias.values<float>();
  }
  const Tensor x = tg::randn({1, 2, 4, 4});
  CHECK(odd(x).shape() == tg::Shape{1, 3, 7, 7});
  CHECK(tg_test::bitwise_equal(odd.forward(x, {8, 7}), even(x)));
  CHECK(tg_test::bitwise_equal(odd.forward(x, {1, 3, 8, 7}), even(x)));
  CHECK(odd.forward(tg::randn({2, 4, 4}), {3, 8, 8}).shape() == tg::Shape{3, 8, 8});
  CHECK(odd(x).shape() == tg::Shape{1, 3, 7, 7});  // the options are unchanged
  nn::ConvTranspose1d up1(nn::ConvTranspose1dOptions(4, 6, 3).stride(3));
  CHECK(up1.forward(tg::randn({2, 4, 5}), {15}).shape() == tg::Shape{2, 6, 15});

  // PyTorch's repr (torch 1.13), with tapegrad's bias=false.
  auto printed = [](const nn::Module& m) {
    std::ostringstream s;
    s << m;
    return s.str();
  };
  CHECK(printed(up) == "ConvTranspose2d(16, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))");
  CHECK(printed(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(16, 8, {3, 2})
                                        .stride({2, 1})
                                        .padding({1, 0})
                                        .output_padding({1, 0})
                                        .groups(2)
                                        .bias(false)
                                        .dilation({1, 2}))) ==
        "ConvTranspose2d(16, 8, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), "
        "output_padding=(1, 0), groups=2, bias=false)");
  CHECK(printed(nn::ConvTranspose1d(4, 6, 3)) == "ConvTranspose1d(4, 6, kernel_size=(3,), stride=(1,))");
  // clone() copies the options and the values.
  const auto copy = up.clone();
  CHECK(printed(*copy) == printed(up));
  CHECK(tg_test::bitwise_equal(copy->named_parameters().at("weight"), up.weight));
}

TEST_CASE("conv_transpose2d and the ConvTranspose layers: errors name the op, the shapes and the values") {
  const Tensor x = tg::randn({1, 2, 3, 3}), w = tg::randn({2, 2, 3, 3});
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(tg::randn({2, 3}), w),
                       "conv_transpose2d: expected input (N, C, H, W) or (C, H, W), got [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, tg::randn({2, 2, 3})),
                       "conv_transpose2d: expected weight (in_channels, out_channels / groups, kH, kW), got [2, 2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w.to(tg::kFloat64)),
                       "conv_transpose2d: input, weight and bias must share one floating-point dtype, got float32, "
                       "float64",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(tg::randn({1, 3, 3, 3}), w),
                       "conv_transpose2d: weight [2, 2, 3, 3] expects 2 input channels, got input [1, 3, 3, 3]",
                       tg::Error);
  tg::ConvTranspose2dParams p;
  p.groups = 2;
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(tg::randn({1, 3, 3, 3}), tg::randn({3, 2, 3, 3}), Tensor(), p),
                       "conv_transpose2d: in_channels (3) must be divisible by groups (2)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, tg::randn({3})), "conv_transpose2d: bias must have shape [2], got [3]",
                       tg::Error);
  p = {};
  p.output_padding = {0, 1};
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, Tensor(), p),
                       "conv_transpose2d: output_padding must be smaller than either stride or dilation, got "
                       "output_padding 1, stride 1, dilation 1",
                       tg::Error);
  p = {};
  p.padding = {2, 2};
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(tg::randn({1, 2, 1, 1}), tg::randn({2, 2, 2, 2}), Tensor(), p),
                       "conv_transpose2d: the input [1, 2, 1, 1] gives an output of -2 x -2 per channel (too small)",
                       tg::Error);
  p = {};
  p.stride = {0, 1};
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, Tensor(), p),
                       "conv_transpose2d: stride and dilation must be positive, padding and output_padding "
                       "non-negative, got stride 0, padding 0, output_padding 0, dilation 1",
                       tg::Error);
  p = {};
  p.groups = 0;
  CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, Tensor(), p), "conv_transpose2d: groups must be positive, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose1d(x, w),
                       "conv_transpose1d: expected input (N, C, L) or (C, L), got [1, 2, 3, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv_transpose1d(tg::randn({1, 2, 3}), w),
                       "conv_transpose1d: expected weight (in_channels, out_channels / groups, k), got [2, 2, 3, 3]",
                       tg::Error);

  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(3, 4, 3).groups(2)),
                       "ConvTranspose2d: in_channels (3) and out_channels (4) must be divisible by groups (2)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(0, 4, 3)),
                       "ConvTranspose2d: in_channels and out_channels must be positive, got 0 and 4", tg::Error);
  CHECK_THROWS_WITH_AS(nn::ConvTranspose1d(nn::ConvTranspose1dOptions(2, 4, 0)),
                       "ConvTranspose1d: kernel_size, stride and dilation must be positive, got kernel_size 0, "
                       "stride 1, dilation 1",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2, 4, 3).padding(-1)),
                       "ConvTranspose2d: padding and output_padding must be non-negative, got -1 and 0", tg::Error);
  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2, 4, 3).stride(2).output_padding(2)),
                       "ConvTranspose2d: output_padding must be smaller than either stride or dilation, got "
                       "output_padding 2, stride 2, dilation 1",
                       tg::Error);
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(2, 2, 3).stride(2).padding(1));
  CHECK_THROWS_WITH_AS(up(tg::randn({2, 3})), "ConvTranspose2d: expected (N, C, H, W) or (C, H, W) input, got [2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(up(tg::randn({1, 3, 3, 3})),
                       "ConvTranspose2d: expected 2 input channels (in_channels) at dim 1, got input [1, 3, 3, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(up.forward(x, {7, 8}),
                       "ConvTranspose2d: requested an output size of (7, 8), but valid sizes range from (5, 5) to "
                       "(6, 6) (for an input of [1, 2, 3, 3])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(up.forward(x, {6}), "ConvTranspose2d: for 4-D input, output_size must have 2 or 4 elements, got 1",
                       tg::Error);
  // A failed forward leaves the layer as it was.
  CHECK(up(x).shape() == tg::Shape{1, 2, 5, 5});
}
