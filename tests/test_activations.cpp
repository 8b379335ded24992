// The activations of modern CNNs and sequence models: silu, mish, elu, selu, hardtanh, relu6,
// hardsigmoid, hardswish and their layers. PyTorch's values and gradients over ordinary values,
// the kinks, the infinities and NaN in both dtypes; gradcheck on each side of every kink; layers,
// printing, thread counts and errors.
#include "helpers.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

using tg::Tensor;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// NaN where expected is NaN, the same infinity, else within tol·max(1, |expected|).
void check_special_close(const Tensor& t, const std::vector<double>& expected, double tol) {
  const std::vector<double> got = tg_test::flat(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    if (std::isnan(expected[i])) CHECK(std::isnan(got[i]));
    else if (std::isinf(expected[i])) CHECK(got[i] == expected[i]);
    else CHECK(std::abs(got[i] - expected[i]) <= tol * std::max(1.0, std::abs(expected[i])));
  }
}

}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13, in float64 and float32:
//   xs = [-inf, -100, -20, -6, -3, -2.5, -1, -1e-3, 0, 1e-3, 0.5, 1, 2.9, 3, 5.5, 6, 7, 25, 100, inf, nan]
//   x = torch.tensor(xs, dtype=dt, requires_grad=True); y = f(x); y.backward(torch.ones_like(y) * 0.75)
//   f: F.silu, F.mish, F.elu (alpha 1 and 0.5), F.selu, F.relu6, F.hardtanh(x, -2.0, 2.5),
//   F.hardsigmoid, F.hardswish. (PyTorch's float64 hardsigmoid gradient is 0.75 times float32's 1/6,
//   0.1250000037; tapegrad's uses the exact 1/6: within the tolerance.)
TEST_CASE("activations match PyTorch, the kinks, infinities and NaN included") {
  const std::vector<double> xs{-kInf, -100, -20, -6, -3, -2.5, -1, -1e-3, 0, 1e-3, 0.5,
                               1,     2.9,  3,   5.5, 6,  7,    25, 100, kInf, kNaN};
  struct Golden {
    const char* name;
    tg::DType dtype;
    std::function<Tensor(const Tensor&)> op;
    std::vector<double> y, dx;
  };
  const std::vector<Golden> cases{
      {"silu", tg::kFloat64, [](const Tensor& x) { return tg::silu(x); },
       {kNaN, -3.7200759760208357e-42, -4.1223072363804073e-08, -0.014835738939808647, -0.14227761953270035,
        -0.18964545005310887, -0.2689414213699951, -0.00049975000002083336, 0, 0.00050024999997916667,
        0.3112296656009273, 0.7310585786300049, 2.7487546670725886, 2.8577223804672998, 5.4776142425625718,
        5.9851642610601923, 6.9936226416391962, 24.9999999996528, 100, kInf, kNaN},
       {kNaN, -2.7621564121954705e-42, -2.9371438995485092e-08, -0.009244824443644134, -0.066078079511377216,
        -0.074550833506145123, 0.054247116096384947, 0.37462500006249999, 0.375, 0.37537499993749995,
        0.55497089047698889, 0.69575288390361512, 0.81840284012838571, 0.81607807951137701, 0.76366837995441539,
        0.75924482444364372, 0.75409537279983896, 0.75000000024998403, 0.75, kNaN, kNaN}},
      {"mish", tg::kFloat64, [](const Tensor& x) { return tg::mish(x); },
       {kNaN, -3.7200759760208363e-42, -4.1223072406287619e-08, -0.014854080479424991, -0.14564746127562461,
        -0.19681620390653332, -0.30340146137410895, -0.00059967998404586637, 0, 0.000600319983954133,
        0.37524521130489513, 0.86509838826731034, 2.8842668281130717, 2.9865350049679575, 5.4998177767874239,
        5.9999266340652522, 6.9999883798097411, 25, 100, kInf, kNaN},
       {kNaN, -2.7621564121954705e-42, -2.9371439057617269e-08, -0.0092699759488359817, -0.070044835899240626,
        -0.082307679562639263, 0.044412566908046264, 0.44951996413759865, 0.44999999999999996,
        0.45047996386239864, 0.66481828151829547, 0.78677716507484419, 0.76823934424957918, 0.76583018319708263,
        0.75024736917904689, 0.7501006053796575, 0.75001616937066673, 0.75, 0.75, kNaN, kNaN}},
      {"elu", tg::kFloat64, [](const Tensor& x) { return tg::elu(x); },
       {-1, -1, -0.99999999793884642, -0.99752124782333362, -0.95021293163213605, -0.91791500137610116,
        -0.63212055882855767, -0.00099950016662497809, 0, 0.001, 0.5, 1, 2.8999999999999999, 3, 5.5, 6, 7, 25,
        100, kInf, kNaN},
       {0, 2.7900569820156272e-44, 1.5458652168289183e-09, 0.0018590641324997689, 0.037340301275897957,
        0.061563748967924103, 0.27590958087858175, 0.74925037487503121, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75,
        0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}},
      {"elu_a", tg::kFloat64, [](const Tensor& x) { return tg::elu(x, 0.5); },
       {-0.5, -0.5, -0.49999999896942321, -0.49876062391166681, -0.47510646581606802, -0.45895750068805058,
        -0.31606027941427883, -0.00049975008331248905, 0, 0.001, 0.5, 1, 2.8999999999999999, 3, 5.5, 6, 7, 25,
        100, kInf, kNaN},
       {0, 1.3950284910078136e-44, 7.7293260841445915e-10, 0.00092953206624988443, 0.018670150637948978,
        0.030781874483962052, 0.13795479043929088, 0.37462518743751561, 0.375, 0.75, 0.75, 0.75, 0.75, 0.75,
        0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}},
      {"selu", tg::kFloat64, [](const Tensor& x) { return tg::selu(x); },
       {-1.7580993408473766, -1.7580993408473766, -1.758099337223664, -1.7537414482794556, -1.6705687287671118,
        -1.6137857588732423, -1.1113307378125625, -0.0017572205841202171, 0, 0.0010507009873554805,
        0.52535049367774023, 1.0507009873554805, 3.0470328633308932, 3.1521029620664414, 5.7788554304551427,
        6.3042059241328827, 7.3549069114883636, 26.267524683887011, 105.07009873554804, kInf, kNaN},
       {0, 4.9051973410082949e-44, 2.7177846187458085e-09, 0.0032684194259408436, 0.065647959060198657,
        0.10823518648060072, 0.48507645227611051, 1.3172565901974422, 1.3185745056355325, 0.78802574051661034,
        0.78802574051661034, 0.78802574051661034, 0.78802574051661034, 0.78802574051661034, 0.78802574051661034,
        0.78802574051661034, 0.78802574051661034, 0.78802574051661034, 0.78802574051661034, 0.78802574051661034,
        0.78802574051661034}},
      {"relu6", tg::kFloat64, [](const Tensor& x) { return tg::relu6(x); },
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.001, 0.5, 1, 2.8999999999999999, 3, 5.5, 6, 6, 6, 6, 6, kNaN},
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0, 0, 0.75}},
      {"hardtanh", tg::kFloat64, [](const Tensor& x) { return tg::hardtanh(x, -2.0, 2.5); },
       {-2, -2, -2, -2, -2, -2, -1, -0.001, 0, 0.001, 0.5, 1, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, kNaN},
       {0, 0, 0, 0, 0, 0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0, 0, 0, 0, 0, 0.75}},
      {"hardsigmoid", tg::kFloat64, [](const Tensor& x) { return tg::hardsigmoid(x); },
       {0, 0, 0, 0, 0, 0.083333333333333329, 0.33333333333333331, 0.49983333333333335, 0.5, 0.50016666666666665,
        0.58333333333333337, 0.66666666666666663, 0.98333333333333339, 1, 1, 1, 1, 1, 1, 1, kNaN},
       {0, 0, 0, 0, 0, 0.1250000037252903, 0.1250000037252903, 0.1250000037252903, 0.1250000037252903,
        0.1250000037252903, 0.1250000037252903, 0.1250000037252903, 0.1250000037252903, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"hardswish", tg::kFloat64, [](const Tensor& x) { return tg::hardswish(x); },
       {kNaN, -0, -0, -0, -0, -0.20833333333333334, -0.33333333333333331, -0.00049983333333333336, 0,
        0.00050016666666666666, 0.29166666666666669, 0.66666666666666663, 2.8516666666666666, 3, 5.5, 6, 7, 25,
        100, kInf, kNaN},
       {0, 0, 0, 0, -0.375, -0.25, 0.125, 0.37474999999999997, 0.375, 0.37524999999999997, 0.5, 0.625,
        1.1000000000000001, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}},
      {"silu", tg::kFloat32, [](const Tensor& x) { return tg::silu(x); },
       {kNaN, -0, -4.1223074731533416e-08, -0.014835738576948643, -0.14227761328220367, -0.18964545428752899,
        -0.26894143223762512, -0.00049975002184510231, 0, 0.000500250025652349, 0.31122967600822449,
        0.73105859756469727, 2.7487547397613525, 2.8577225208282471, 5.4776144027709961, 5.9851646423339844,
        6.9936227798461914, 25, 100, kInf, kNaN},
       {kNaN, -0, -2.9371438614589351e-08, -0.0092448238283395767, -0.066078081727027893, -0.074550829827785492,
        0.054247114807367325, 0.37462499737739563, 0.375, 0.37537497282028198, 0.55497086048126221,
        0.69575291872024536, 0.81840282678604126, 0.81607800722122192, 0.76366829872131348, 0.75924468040466309,
        0.75409513711929321, 0.75, 0.75, kNaN, kNaN}},
      {"mish", tg::kFloat32, [](const Tensor& x) { return tg::mish(x); },
       {kNaN, -3.9236357001094878e-42, -4.1223074731533416e-08, -0.014854080975055695, -0.14564746618270874,
        -0.19681620597839355, -0.30340147018432617, -0.00059968000277876854, 0, 0.00060031999601051211,
        0.37524521350860596, 0.86509835720062256, 2.8842668533325195, 2.9865350723266602, 5.4998178482055664,
        5.9999265670776367, 6.9999885559082031, 25, 100, kInf, kNaN},
       {kNaN, 2.9427267750821158e-44, -2.937144216730303e-08, -0.0092699751257896423, -0.070044845342636108,
        -0.082307666540145874, 0.044412568211555481, 0.44951993227005005, 0.45000001788139343,
        0.45047995448112488, 0.66481828689575195, 0.78677719831466675, 0.76823925971984863, 0.76583021879196167,
        0.75024747848510742, 0.75010049343109131, 0.75001627206802368, 0.75, 0.75, kNaN, kNaN}},
      {"elu", tg::kFloat32, [](const Tensor& x) { return tg::elu(x); },
       {-1, -1, -1, -0.99752122163772583, -0.95021295547485352, -0.9179149866104126, -0.63212054967880249,
        -0.00099951028823852539, 0, 0.0010000000474974513, 0.5, 1, 2.9000000953674316, 3, 5.5, 6, 7, 25, 100,
        kInf, kNaN},
       {0, 2.8025969286496341e-44, 1.5458652136146611e-09, 0.0018590642139315605, 0.037340298295021057,
        0.061563748866319656, 0.27590960264205933, 0.74925035238265991, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75,
        0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}},
      {"elu_a", tg::kFloat32, [](const Tensor& x) { return tg::elu(x, 0.5); },
       {-0.5, -0.5, -0.5, -0.49876061081886292, -0.47510647773742676, -0.4589574933052063, -0.31606027483940125,
        -0.0004997551441192627, 0, 0.0010000000474974513, 0.5, 1, 2.9000000953674316, 3, 5.5, 6, 7, 25, 100,
        kInf, kNaN},
       {0, 1.4012984643248171e-44, 7.7293260680733056e-10, 0.00092953210696578026, 0.018670149147510529,
        0.030781874433159828, 0.13795480132102966, 0.37462517619132996, 0.375, 0.75, 0.75, 0.75, 0.75, 0.75,
        0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}},
      {"selu", tg::kFloat32, [](const Tensor& x) { return tg::selu(x); },
       {-1.7580993175506592, -1.7580993175506592, -1.7580993175506592, -1.7537413835525513, -1.6705687046051025,
        -1.6137857437133789, -1.1113307476043701, -0.0017572384094819427, 0, 0.0010507010156288743,
        0.52535051107406616, 1.0507010221481323, 3.0470330715179443, 3.1521029472351074, 5.7788558006286621,
        6.3042058944702148, 7.3549070358276367, 26.267524719238281, 105.07009887695312, kInf, kNaN},
       {0, 5.0446744715693415e-44, 2.7177844419412622e-09, 0.003268419299274683, 0.065647952258586884,
        0.10823518037796021, 0.4850764274597168, 1.3172564506530762, 1.3185744285583496, 0.78802573680877686,
        0.78802573680877686, 0.78802573680877686, 0.78802573680877686, 0.78802573680877686, 0.78802573680877686,
        0.78802573680877686, 0.78802573680877686, 0.78802573680877686, 0.78802573680877686, 0.78802573680877686,
        0.78802573680877686}},
      {"relu6", tg::kFloat32, [](const Tensor& x) { return tg::relu6(x); },
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0010000000474974513, 0.5, 1, 2.9000000953674316, 3, 5.5, 6, 6, 6, 6, 6,
        kNaN},
       {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0, 0, 0.75}},
      {"hardtanh", tg::kFloat32, [](const Tensor& x) { return tg::hardtanh(x, -2.0, 2.5); },
       {-2, -2, -2, -2, -2, -2, -1, -0.0010000000474974513, 0, 0.0010000000474974513, 0.5, 1, 2.5, 2.5, 2.5,
        2.5, 2.5, 2.5, 2.5, 2.5, kNaN},
       {0, 0, 0, 0, 0, 0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0, 0, 0, 0, 0, 0.75}},
      {"hardsigmoid", tg::kFloat32, [](const Tensor& x) { return tg::hardsigmoid(x); },
       {0, 0, 0, 0, 0, 0.083333335816860199, 0.3333333432674408, 0.49983334541320801, 0.5, 0.50016665458679199,
        0.58333331346511841, 0.66666668653488159, 0.98333334922790527, 1, 1, 1, 1, 1, 1, 1, kNaN},
       {0, 0, 0, 0, 0, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"hardswish", tg::kFloat32, [](const Tensor& x) { return tg::hardswish(x); },
       {kNaN, -0, -0, -0, -0, -0.2083333283662796, -0.3333333432674408, -0.0004998333752155304, 0,
        0.00050016667228192091, 0.2916666567325592, 0.66666668653488159, 2.8516666889190674, 3, 5.5, 6, 7, 25,
        100, kInf, kNaN},
       {0, 0, 0, 0, -0.375, -0.24999998509883881, 0.1249999925494194, 0.37474998831748962, 0.375,
        0.37524998188018799, 0.5, 0.625, 1.1000000238418579, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}}};
  for (const Golden& k : cases) {
    INFO(k.name, " ", tg::dtype_name(k.dtype));
    const Tensor x = Tensor(xs, {xs.size()}).to(k.dtype).set_requires_grad();
    const Tensor y = k.op(x);
    y.backward(tg::full({xs.size()}, 0.75, k.dtype));
    CHECK(y.dtype() == k.dtype);
    const double tol = k.dtype == tg::kFloat64 ? 5e-9 : 1e-6;
    check_special_close(y, k.y, tol);
    check_special_close(x.grad(), k.dx, tol);
  }
}

// Each side of every kink (0 for elu with alpha != 1, selu, relu6; the bounds of hardtanh, relu6,
// hardsigmoid and hardswish) and the smooth middle, in float64.
TEST_CASE("gradcheck: silu, mish, elu, selu, hardtanh, relu6, hardsigmoid, hardswish") {
  tg::manual_seed(31);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops{
      {"silu", [](const Tensor& x) { return tg::silu(x); }},
      {"mish", [](const Tensor& x) { return tg::mish(x); }},
      {"elu", [](const Tensor& x) { return tg::elu(x, 0.5); }},
      {"selu", [](const Tensor& x) { return tg::selu(x); }},
      {"hardtanh", [](const Tensor& x) { return tg::hardtanh(x, -2.0, 2.5); }},
      {"relu6", [](const Tensor& x) { return tg::relu6(x); }},
      {"hardsigmoid", [](const Tensor& x) { return tg::hardsigmoid(x); }},
      {"hardswish", [](const Tensor& x) { return tg::hardswish(x); }}};
  // Runs of values inside each piece: (-8, -6.2), (-5.8, -3.2), (-2.8, -2.2), (-1.8, -0.2),
  // (0.2, 2.2), (2.8, 5.8), (6.2, 8): none within 0.2 of 0, ±2, 2.5, ±3 or 6.
  const std::vector<std::pair<double, double>> pieces{{-8, -6.2}, {-5.8, -3.2}, {-2.8, -2.2}, {-1.8, -0.2},
                                                      {0.2, 2.2},  {2.8, 5.8},   {6.2, 8}};
  for (const auto& named : ops)
    for (const auto& piece : pieces) {
      INFO(named.first, " on (", piece.first, ", ", piece.second, ")");
      const auto& op = named.second;
      CHECK_GRADCHECK([&](const Inputs& x) { return op(x[0]); },
                      Inputs{tg_test::uniform64({2, 5}, piece.first, piece.second)});
    }
}

TEST_CASE("activation layers: the ops, printing, Sequential, threads and errors") {
  tg::manual_seed(32);
  const Tensor x = tg::randn({4, 6}) * 4.0;
  nn::Sequential model(nn::SiLU(), nn::Mish(), nn::ELU(0.5), nn::SELU(), nn::Hardtanh(-2.0, 2.5), nn::ReLU6(),
                       nn::Hardsigmoid(), nn::Hardswish());
  const std::vector<Tensor> expected{tg::silu(x), tg::mish(x), tg::elu(x, 0.5), tg::selu(x), tg::hardtanh(x, -2.0, 2.5),
                                     tg::relu6(x), tg::hardsigmoid(x), tg::hardswish(x)};
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(tg_test::bitwise_equal(model[i]->forward(x), expected[i]));
  std::ostringstream printed;
  printed << model;
  CHECK(printed.str() ==
        "Sequential(\n  (0): SiLU()\n  (1): Mish()\n  (2): ELU(alpha=0.5)\n  (3): SELU()\n"
        "  (4): Hardtanh(min_val=-2, max_val=2.5)\n  (5): ReLU6()\n  (6): Hardsigmoid()\n  (7): Hardswish()\n)");
  std::ostringstream defaults;
  defaults << nn::ELU() << nn::Hardtanh();
  CHECK(defaults.str() == "ELU(alpha=1)Hardtanh(min_val=-1, max_val=1)");
  // Forward and backward over a million values (split over threads): the same bits for 1 and 2.
  const Tensor big = tg::randn({1 << 20}) * 5.0, g = tg::randn({1 << 20});
  for (std::size_t i = 0; i < expected.size(); ++i) {
    std::vector<Tensor> runs;
    for (int threads : {1, 2}) {
      tg::set_num_threads(threads);
      const Tensor leaf = big.detach().set_requires_grad();
      const Tensor y = model[i]->forward(leaf);
      y.backward(g);
      runs.push_back(y);
      runs.push_back(leaf.grad());
    }
    tg::set_num_threads(1);
    INFO(model[i]->type_name());
    CHECK(tg_test::bitwise_equal(runs[0], runs[2]));
    CHECK(tg_test::bitwise_equal(runs[1], runs[3]));
  }
  CHECK_THROWS_WITH_AS(nn::Hardtanh(1.0, 1.0), "Hardtanh: max_val (1) must be greater than min_val (1)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::hardtanh(x, 2.0, -2.0), "hardtanh: max_val (-2) must be greater than min_val (2)", tg::Error);
  for (const auto& named : std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>>{
           {"silu", [](const Tensor& t) { return tg::silu(t); }},
           {"elu", [](const Tensor& t) { return tg::elu(t); }},
           {"relu6", [](const Tensor& t) { return tg::relu6(t); }},
           {"hardswish", [](const Tensor& t) { return tg::hardswish(t); }}})
    CHECK_THROWS_WITH_AS(named.second(tg::ones({2}, tg::kInt64)), (named.first + ": expected a floating-point tensor (float32 or float64), got int64").c_str(),
                         tg::Error);
}

// Golden values: /usr/bin/python3 with torch 1.13 (float64):
//   x = seq((2, 3, 4), torch.sin) * 2; m = nn.PReLU(3); m.weight = [0.25, -0.5, 1.5]
//   y = m(x); y.backward(seq((2, 3, 4), torch.cos))
//   x = [-2, -0.0, 0, 1.5, -1]; m = nn.PReLU(); y = m(x); y.backward([1, 2, 3, 4, 5])
TEST_CASE("PReLU matches PyTorch: a slope per channel, one slope, zero and NaN") {
  nn::PReLU per_channel(3);
  per_channel.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    per_channel.weight.values_mut<double>() = xt::xarray<double>{0.25, -0.5, 1.5};
  }
  const Tensor x = (tg_test::seq({2, 3, 4}, tg_test::sin_) * 2.0).detach().set_requires_grad();
  const Tensor y = per_channel(x);
  y.backward(tg_test::seq({2, 3, 4}, tg_test::cos_));
  tg_test::check_close(y, {0, 1.68294197, 1.81859485, 0.282240016, 0.756802495, 0.958924275, 0.279415498, 1.3139732,
                           1.97871649, 0.82423697, -1.63206333, -2.99997062, -0.268286459, 0.840334074, 1.98121471,
                           1.30057568, 0.287903317, 0.961397492, 0.750987247, 0.299754419, 1.8258905, 1.67331128,
                           -0.0265539279, -2.53866121}, 1e-8);
  tg_test::check_close(x.grad(), {0.25, 0.540302306, -0.416146837, -0.989992497, 0.32682181, -0.141831093, -0.480085143,
                                  0.753902254, -0.145500034, -0.911130262, -1.25860729, 0.00663854698, 0.21096349,
                                  0.907446781, 0.136737218, -0.759687913, 0.47882974, 0.137581669, -0.330158354,
                                  0.988704618, 0.408082062, -0.54772926, -1.49994124, -0.799249531}, 1e-8);
  tg_test::check_close(per_channel.weight.grad(), {-0.905578362, -0.00250526835, 1.82358421}, 1e-8);

  nn::PReLU single;
  CHECK(tg_test::flat(single.weight) == std::vector<double>{0.25});
  const Tensor v = Tensor(std::vector<double>{-2.0, -0.0, 0.0, 1.5, -1.0}, {5}).to(tg::kFloat32).set_requires_grad();
  const Tensor w = single(v);
  w.backward(Tensor(std::vector<double>{1, 2, 3, 4, 5}, {5}).to(tg::kFloat32));
  CHECK(tg_test::flat(w) == std::vector<double>{-0.5, -0.0, 0.0, 1.5, -0.25});
  CHECK(tg_test::flat(v.grad()) == std::vector<double>{0.25, 0.5, 0.75, 4, 1.25});  // 0 takes the slope
  CHECK(tg_test::flat(single.weight.grad()) == std::vector<double>{-7});
  CHECK(std::isnan(single(tg::full({1}, kNaN)).item()));
  CHECK(single(tg::full({}, -4.0)).shape() == tg::Shape{});  // a 0-d input keeps its shape

  // Every layout (one slope; a slope per channel over runs, over rows of (N, C), of length 1),
  // empty and 0-d inputs, both dtypes: the definition x > 0 ? x : w·x, and its gradients.
  tg::manual_seed(34);
  for (const tg::Shape& shape : std::vector<tg::Shape>{{5, 3}, {2, 3, 4}, {2, 3, 1, 1}, {3, 3, 5, 7}, {0, 3, 4}, {}, {7}})
    for (bool per_channel : {false, true})
      for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        if (per_channel && shape.size() < 2) continue;
        INFO(tg::shape_str(shape), " per channel ", per_channel, " ", tg::dtype_name(dtype));
        const std::size_t slopes = per_channel ? shape[1] : 1;
        const Tensor in = (tg::randn(shape, dtype) * 2.0).set_requires_grad(), g = tg::randn(shape, dtype);
        const Tensor weight = tg::randn({slopes}, dtype).set_requires_grad();
        const Tensor out = tg::prelu(in, weight);
        out.backward(g);
        std::vector<std::int64_t> broadcast(shape.size() >= 2 ? shape.size() - 1 : 0, 1);
        if (!broadcast.empty()) broadcast[0] = std::int64_t(slopes);
        const Tensor in2 = in.detach().set_requires_grad(), weight2 = weight.detach().set_requires_grad();
        const Tensor expected = tg::where(tg::gt(in2, 0.0), in2, weight2.reshape(broadcast) * in2);
        expected.backward(g);
        CHECK(tg_test::bitwise_equal(out, expected));
        CHECK(tg_test::bitwise_equal(in.grad(), in2.grad()));
        CHECK(tg::max(tg::abs(weight.grad() - weight2.grad())).item() <= (dtype == tg::kFloat64 ? 1e-12 : 1e-4));
      }
  tg::manual_seed(33);
  CHECK_GRADCHECK([](const Inputs& in) { return tg::prelu(in[0], in[1]); },
                  Inputs{tg_test::away_from_zero64({6, 3}), tg_test::uniform64({3})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::prelu(in[0], in[1]); },
                  Inputs{tg_test::away_from_zero64({2, 3, 2, 2}), tg_test::uniform64({3})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::prelu(in[0], in[1]); },
                  Inputs{tg_test::away_from_zero64({4, 5}), tg_test::uniform64({1})});
  std::ostringstream printed;
  printed << single << nn::PReLU(3, 0.1);
  CHECK(printed.str() == "PReLU(num_parameters=1)PReLU(num_parameters=3)");
  CHECK(tg_test::flat(nn::PReLU(3, 0.1).weight) == std::vector<double>(3, double(0.1f)));
  CHECK_THROWS_WITH_AS(per_channel(tg::randn({2, 4, 5}, tg::kFloat64)),
                       "prelu: Mismatch of parameter numbers and input channel size. Found parameter numbers = 3 and "
                       "channel size = 4.",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::prelu(tg::randn({2, 3}), tg::ones({3}, tg::kFloat64)),
                       "prelu: weight must be a 1-D float32 tensor (num_parameters), got float64 [3]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::PReLU(0), "PReLU: num_parameters must be positive, got 0", tg::Error);
}
