// tg::norm (torch.linalg.vector_norm) and tg::normalize (torch.nn.functional.normalize): golden
// values and gradients from PyTorch, gradcheck over p and dim sets, float32 accuracy and range,
// NaN, thread counts, errors.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "helpers.hpp"

using tg::Tensor;
using Inputs = std::vector<Tensor>;
using tg_test::uniform64;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// t with the flat positions `at` set to 0.
Tensor zeroed(const Tensor& t, const std::vector<std::size_t>& at) {
  std::vector<double> v = tg_test::flat(t);
  for (std::size_t i : at) v[i] = 0.0;
  return Tensor(v, t.shape());
}
}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   V = torch.linalg.vector_norm; x = seq((2, 3, 4), torch.sin, 2.0)
//   z = seq((3, 4), torch.sin, 2.0); z[1] = 0; z[2, 1] = 0   (a zero row, a zero value)
//   t = [[1, -2, 2, 0.5], [3, 3, -3, 1], [0, 0, 0, 0]]        (ties of the largest |value|)
//   V(x), V(x, 2, -1), V(x, 1, 1, keepdim=True), V(x, inf, (0, 2)), V(x, -inf, 2), V(x, 3, (1, 2)),
//   V(z, 0, -1), V(z, 0.5, 0), V(z, p, 1) for p 2, 3, 1.5, 1; V(t, inf, 1), V(t, -inf, 0);
//   F.normalize(z), F.normalize(x, 1.0, -1), F.normalize(x, 2.0, 0, eps=3.0);
//   b = seq((3, 4), torch.cos, 1.5); b[1] = z[1]; F.pairwise_distance(z, b, eps=0.0)
//   out.backward(seq(out.shape, torch.cos)) (0.75 for a number); the inputs' grads (p = 0's is
//   undefined in PyTorch, zeros here)
TEST_CASE("norm, normalize and a zero pairwise distance match PyTorch, gradients at zero norms included") {
  const Tensor x = tg_test::seq({2, 3, 4}, tg_test::sin_, 2.0);
  const Tensor z = zeroed(tg_test::seq({3, 4}, tg_test::sin_, 2.0), {4, 5, 6, 7, 9});
  const Tensor t(std::vector<double>{1, -2, 2, 0.5, 3, 3, -3, 1, 0, 0, 0, 0}, {3, 4});
  const Tensor b = zeroed(tg_test::seq({3, 4}, tg_test::cos_, 1.5), {4, 5, 6, 7});
  tg_test::check_golden({
      {"p2 all", [](const Inputs& in) { return tg::norm(in[0]); }, {x},
       {6.844935814580284},
       {{0, 0.18440004572771007, 0.1992635398177443, 0.03092505435024018, -0.16584578346867968, -0.2101387728035119, -0.06123114352739749, 0.14397211672592009, 0.2168080768228607, 0.09031169095053672, -0.11921684708800909, -0.21913796571049818, -0.1175846492652619, 0.09207545144506324, 0.21708180672449717, 0.142504150025472, -0.06309116501541343, -0.21068075390094237, -0.16457142925402105, 0.03284410848901638, 0.20006292435561884, 0.18334481020711177, -0.0019396769079009879, -0.1854408340190679}}},
      {"p2 dim -1", [](const Inputs& in) { return tg::norm(in[0], 2.0, -1); }, {x},
       {2.4938404803677354, 2.82983405377232, 3.127050219187581, 2.7339554081075814, 2.5247720530211057, 2.999752660763117},
       {{0, 0.6748394626137557, 0.729234635482057, 0.1131748475259797, -0.2889937187352362, -0.3661762399549614, -0.1066980148683455, 0.25087787302512116, -0.26332695395669964, -0.10968919070350842, 0.14479630862486823, 0.26615674956593066, 0.3885968009018337, -0.30429334183262535, -0.7174175894068129, -0.4709514138211011, 0.14907180720605293, 0.4977964936909061, 0.38884937958249, -0.07760406084327641, 0.17265959851756055, 0.1582314235513632, -0.0016739925063609714, -0.16004034757374883}}},
      {"p1 dim 1 keepdim", [](const Inputs& in) { return tg::norm(in[0], 1.0, 1, true); }, {x},
       {3.4923214838626198, 4.425027489425583, 3.4654680718279547, 3.5961936266587196, 3.4748429707862556, 4.436440334484508, 3.500891823513901, 3.2927709079904797},
       {{0, 0.5403023058681398, -0.4161468365471424, -0.9899924966004454, -1, -0.5403023058681398, 0.4161468365471424, -0.9899924966004454, 1, 0.5403023058681398, 0.4161468365471424, 0.9899924966004454, 0.6536436208636119, 0.28366218546322625, 0.960170286650366, 0.7539022543433046, 0.6536436208636119, -0.28366218546322625, -0.960170286650366, 0.7539022543433046, -0.6536436208636119, 0.28366218546322625, -0.960170286650366, -0.7539022543433046}}},
      {"pinf dims 0 2", [](const Inputs& in) { return tg::norm(in[0], kInf, {0, 2}); }, {x},
       {1.9812147113897407, 1.9227949837591136, 1.999980413101407},
       {{0, 0, 0, 0, -0, -0, -0, 0, -0, -0, 0, 0.4161468365471424, -0, 0, 1, 0, -0, -0.5403023058681398, -0, 0, -0, -0, 0, 0}}},
      {"p-inf dim 2", [](const Inputs& in) { return tg::norm(in[0], -kInf, 2); }, {x},
       {0, 0.5588309963978517, 0.8242369704835132, 0.8403340736532818, 0.2997544193259047, 0.017702618580807752},
       {{0, 0, 0, 0, -0, -0, -0.5403023058681398, 0, -0, -0.4161468365471424, 0, 0, 0, -0.9899924966004454, -0, -0, 0, 0, 0, -0.6536436208636119, 0, 0, -0.28366218546322625, -0}}},
      {"p3 dims 1 2", [](const Inputs& in) { return tg::norm(in[0], 3.0, {1, 2}); }, {x},
       {3.45838318208418, 3.3661345379063645},
       {{0, 0.2368056505111534, 0.27651945634889746, 0.006660256504494804, -0.19154855532353326, -0.3075263938316847, -0.026110473803161092, 0.14435332504275708, 0.32735646809593627, 0.056801258736810925, -0.0989795046559314, -0.3344300267943579, -0.054915048403404845, 0.03367269125593915, 0.1871703142446765, 0.08065757094360426, -0.015809830308265004, -0.17629493785458922, -0.10757193885326698, 0.004284548571808113, 0.15897298901480872, 0.13351416901473612, -1.4943382242174503e-05, -0.13658432423922584}}},
      {"p0 dim -1 zeros", [](const Inputs& in) { return tg::norm(in[0], 0.0, -1); }, {z},
       {3, 0, 3},
       {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}},
      {"p0.5 dim 0 zeros", [](const Inputs& in) { return tg::norm(in[0], 0.5, 0); }, {z},
       {1.9787164932467636, 1.682941969615793, 5.719968186467131, 3.7848507949903074},
       {{0, 0.5403023058681398, -0.7380323955178705, -3.625325373431733, 0, 0, -0, -0, 1, 0, 0.9541585141196135, 1.3618943356211135}}},
      {"p2 dim 1 zero row", [](const Inputs& in) { return tg::norm(in[0], 2.0, 1); }, {z},
       {2.4938404803677354, 0, 3.0164675515923025},
       {{0, 0.6748394626137557, 0.729234635482057, 0.1131748475259797, 0, 0, 0, 0, -0.2729804299249393, -0, 0.15010449172043472, 0.27591396487227554}}},
      {"p3 dim 1 zero row", [](const Inputs& in) { return tg::norm(in[0], 3.0, 1); }, {z},
       {2.210670239438149, 0, 2.5730517619160196},
       {{0, 0.5795492562057916, 0.6767433332250042, 0.01630006165388333, 0, 0, 0, 0, -0.24610288178198444, -0, 0.07441166956273272, 0.25142070302517255}}},
      {"p1.5 dim 1 zero row", [](const Inputs& in) { return tg::norm(in[0], 1.5, 1); }, {z},
       {2.839846922159024, 0, 3.5704926621832596},
       {{0, 0.7698163047228231, 0.8002404749437879, 0.31525488785545763, 0, 0, 0, 0, -0.30979493432036515, -0, 0.2297234867727979, 0.31145506385703114}}},
      {"p1 dim 1 zero row", [](const Inputs& in) { return tg::norm(in[0], 1.0, 1); }, {z},
       {3.7837768393868907, 0, 5.06673912812691},
       {{0, 1, 1, 1, 0, 0, 0, 0, -0.4161468365471424, -0, 0.4161468365471424, 0.4161468365471424}}},
      {"pinf dim 1 ties", [](const Inputs& in) { return tg::norm(in[0], kInf, 1); }, {t},
       {2, 3, 0},
       {{0, -0.5, 0.5, 0, 0.18010076862271326, 0.18010076862271326, -0.18010076862271326, 0, -0, -0, -0, -0}}},
      {"p-inf dim 0 ties", [](const Inputs& in) { return tg::norm(in[0], -kInf, 0); }, {t},
       {0, 0, 0, 0},
       {{0, -0, -0, -0, 0, 0, 0, -0, 0, 0, -0, -0}}},
      {"normalize p2 dim 1 zero row", [](const Inputs& in) { return tg::normalize(in[0]); }, {z},
       {0, 0.6748394626137557, 0.729234635482057, 0.1131748475259797, 0, 0, 0, 0, 0.6559714166997284, 0, -0.36070078764957864, -0.6630206951988187},
       {{0.40098795727806236, 0.23042665829398143, -0.15198784765860626, -0.3946654274017424, -653643620863.6119, 283662185463.22626, 960170286650.366, 753902254343.3046, -0.09265770749068872, -0.3020520679573426, -0.25373691492891826, 0.04636702540725399}}},
      {"normalize p1 dim -1", [](const Inputs& in) { return tg::normalize(in[0], 1.0, -1); }, {x},
       {0, 0.4447783368451747, 0.48062952199528813, 0.07459214115953719, -0.2853566071982524, -0.3615677528475661, -0.10535517398395079, 0.24772046597023076, 0.3358894112154873, 0.1399151781786954, -0.1846964244236858, -0.3394989861821315, -0.2065620793051581, 0.16174982722912515, 0.3813496885564972, 0.25033840490921955, -0.1338982269662158, -0.44712725460609387, -0.34926954639411084, 0.06970497203357932, 0.35050288077319763, 0.3212133600435547, -0.00339824255882647, -0.3248855166244211},
       {{0.26428619933146913, 0.15165948849834576, -0.10111682020443222, -0.2527763087027779, -0.09126386914471112, 0.08544432517210461, 0.21298490391870845, 0.11016540796723943, -0.020814572900775517, -0.1507811888333477, -0.1463175876111826, -0.0031329586218595334, 0.13055927534173653, 0.20653593599401834, 0.058187627140697105, -0.11435876199180198, -0.20187016540156597, -0.04316233177874586, 0.17437444586627496, 0.20908940997986217, 0.050769958348437165, -0.13271016906491434, -0.16438860737961594, -0.07471748987107221}}},
      {"normalize p2 dim 0 eps", [](const Inputs& in) { return tg::normalize(in[0], 2.0, 0, 3.0); }, {x},
       {0, 0.5609806565385976, 0.6061982845504544, 0.0940800053732448, -0.5045349968719521, -0.6392828497754256, -0.18627699879928392, 0.43799106581252606, 0.6595721644155879, 0.27474565682783775, -0.36268074059291316, -0.666660137700469, -0.3577152786669566, 0.28011135788442726, 0.6604049037965802, 0.4335252267714112, -0.19193554444337688, -0.6409316612530379, -0.5006581645144507, 0.09991813977530156, 0.6086301671517518, 0.557770425690704, -0.0059008728602692505, -0.5641469361167805},
       {{0.3333333333333333, 0.18010076862271326, -0.1387156121823808, -0.3299974988668151, -0.2178812069545373, 0.09455406182107541, 0.32005676221678864, 0.2513007514477682, -0.048500011269537846, -0.3037100872948923, -0.2796905096921508, 0.0014752326626835952, 0.2812846529108307, 0.3024822604833987, 0.04557907273594453, -0.25322930428627377, -0.31921982677446153, -0.09172111268386564, 0.2201055694146934, 0.3295682060622231, 0.13602735393779733, -0.18257642007475613, -0.333320275464879, -0.17761100677779917}}},
      {"pairwise_distance eps0 equal row", [](const Inputs& in) { return tg::pairwise_distance(in[0], in[1], 2.0, 0.0); }, {z, b},
       {3.4787468073228407, 0, 3.2787391458836224},
       {{-0.4311897597268264, 0.25080540756141706, 0.7022112397860908, 0.508007296564483, 0, 0, 0, 0, -0.27884520133800916, -0.1734648408863399, -0.021648600852884545, 0.2546857481610395}, {0.4311897597268264, -0.25080540756141706, -0.7022112397860908, -0.508007296564483, -0, -0, -0, -0, 0.27884520133800916, 0.1734648408863399, 0.021648600852884545, -0.2546857481610395}}}});
}

// gradcheck away from zero (and from ties, for ±inf) over p and every kind of dim set: the last,
// the first (a copy to rows), the middle, several, all, a 0-d tensor, keepdim.
TEST_CASE("norm and normalize: gradcheck over p and dims") {
  tg::manual_seed(31);
  const std::vector<std::vector<std::int64_t>> dim_sets{{}, {-1}, {0}, {1}, {0, 2}, {1, 2}, {2, 0, 1}};
  for (double p : {2.0, 1.0, 3.0, 0.5, 1.5, kInf, -kInf}) {
    for (const auto& dims : dim_sets) {
      for (bool keepdim : {false, true}) {
        INFO("p ", p, " dims ", dims.size(), " keepdim ", keepdim);
        CHECK_GRADCHECK([&](const Inputs& in) { return tg::norm(in[0], p, dims, keepdim); },
                        {tg_test::away_from_zero64({2, 3, 5})});
      }
    }
  }
  CHECK_GRADCHECK([](const Inputs& in) { return tg::norm(in[0], 2.0); }, {uniform64({}, 0.5, 1.0)});
  for (double p : {2.0, 1.0, 3.0}) {
    INFO("normalize p ", p);
    CHECK_GRADCHECK([p](const Inputs& in) { return tg::normalize(in[0], p); }, {tg_test::away_from_zero64({3, 4, 2})});
    CHECK_GRADCHECK([p](const Inputs& in) { return tg::normalize(in[0], p, -1); }, {tg_test::away_from_zero64({5, 7})});
  }
}

// float32: the squares and powers add up in double, so values whose squares overflow float
// (1e20² = 1e40) have a norm, and rows of every length (a remainder in each vector loop, a row
// of a million values in blocks) come out within a float rounding of the double norm. NaN
// propagates; inf gives inf; 1 and 2 threads give the same bits.
TEST_CASE("norm in float32: accuracy, range, NaN and thread counts") {
  tg::manual_seed(5);
  for (std::size_t n : {1, 7, 16, 100, 1000, 8193, 1000000}) {
    const Tensor x = tg::randn({3, n});
    const Tensor x64 = x.to(tg::kFloat64);
    for (double p : {2.0, 1.0, 3.0, kInf, 0.0}) {
      INFO("n ", n, " p ", p);
      const std::vector<double> got = tg_test::flat(tg::norm(x, p, -1)), want = tg_test::flat(tg::norm(x64, p, -1));
      for (std::size_t r = 0; r < 3; ++r) CHECK(std::abs(got[r] - want[r]) <= 2e-7 * std::abs(want[r]));
    }
  }
  const Tensor huge(std::vector<float>{1e20f, -1e20f, 1e20f, 1e20f}, {4});
  CHECK(tg::norm(huge).item() == doctest::Approx(2e20).epsilon(1e-7));
  CHECK(tg::norm(huge, 3.0).item() == doctest::Approx(1e20 * std::cbrt(4.0)).epsilon(1e-6));
  const Tensor special(std::vector<float>{1.0f, NAN, 2.0f, 3.0f, INFINITY, 0.0f}, {2, 3});
  const std::vector<double> two = tg_test::flat(tg::norm(special, 2.0, 1)), top = tg_test::flat(tg::norm(special, kInf, 1));
  CHECK(std::isnan(two[0]));
  CHECK(two[1] == INFINITY);
  CHECK(std::isnan(top[0]));
  CHECK(top[1] == INFINITY);
  CHECK(tg_test::flat(tg::norm(special, 0.0, 1)) == std::vector<double>{3.0, 2.0});  // NaN is not zero
  // The methods call the function.
  const Tensor r = tg::randn({4, 5, 6});
  CHECK(tg_test::bitwise_equal(r.norm(), tg::norm(r)));
  CHECK(tg_test::bitwise_equal(r.norm(1.0, 1, true), tg::norm(r, 1.0, {1}, true)));
  CHECK(tg_test::bitwise_equal(r.norm(kInf, {0, 2}), tg::norm(r, kInf, {0, 2})));
  // One row of a million (blocks over both threads) and a thousand rows of a thousand.
  for (const tg::Shape& shape : {tg::Shape{1000000}, tg::Shape{1000, 1000}}) {
    Tensor big = tg::randn(shape).set_requires_grad();
    tg::set_num_threads(1);
    Tensor one = tg::norm(big, 2.0, -1);
    one.backward(tg::ones_like(one));
    const Tensor grad_one = big.grad();
    big.set_grad(Tensor());
    tg::set_num_threads(2);
    Tensor both = tg::norm(big, 2.0, -1);
    both.backward(tg::ones_like(both));
    CHECK(tg_test::bitwise_equal(one, both));
    CHECK(tg_test::bitwise_equal(grad_one, big.grad()));
  }
}

TEST_CASE("norm and normalize: empty inputs and errors") {
  // An empty reduction: 0 (the sum of nothing), as PyTorch; the infinity norm has no identity.
  CHECK(tg_test::flat(tg::norm(tg::zeros({2, 0}), 2.0, 1)) == std::vector<double>{0.0, 0.0});
  CHECK(tg::norm(tg::zeros({3, 0}), 2.0, 0).numel() == 0);
  CHECK_THROWS_WITH_AS(tg::norm(tg::zeros({2, 0}), kInf, 1),
                       "norm: the infinity norm of no values (dims [1] of [2, 0]) is undefined, as in PyTorch", tg::Error);
  CHECK_THROWS_WITH_AS(tg::norm(tg::zeros({2, 0}), -kInf),
                       "norm: the -infinity norm of no values (dims [] of [2, 0]) is undefined, as in PyTorch", tg::Error);
  CHECK_THROWS_WITH_AS(tg::norm(Tensor(std::vector<std::int64_t>{1, 2}, {2})),
                       "norm: expected a floating-point tensor, got int64 [2]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::norm(tg::ones({2}), -1.0), "norm: p must be 0, positive or ±infinity, got -1", tg::Error);
  CHECK_THROWS_AS(tg::norm(tg::ones({2, 3}), 2.0, 2), tg::Error);
  CHECK_THROWS_WITH_AS(tg::norm(tg::ones({2, 3}), 2.0, {1, -1}), "norm: dim -1 appears more than once in [1, -1]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::normalize(tg::ones({2, 3}), 2.0, 1, -1.0), "normalize: eps must not be negative, got -1", tg::Error);
}
