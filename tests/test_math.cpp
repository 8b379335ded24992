// The math functions beyond exp/log/sin/cos (log1p ... erfc, atan2) and rounding (floor ... frac):
// golden values and gradients from PyTorch, gradcheck, every function against the C library in
// long double over the whole range of both dtypes (special values, subnormals, overflow), and
// the float64 exp and log the same way (xsimd 8.1 gets their far ends wrong; math_lanes.hpp).
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "helpers.hpp"

using tg::Tensor;
using Inputs = std::vector<Tensor>;
using tg_test::uniform64;

namespace {

// The golden scripts' inputs, float64, shape (2, 3): s in (-0.9, 0.9), w wide, p positive, q > 1,
// c (3,) for a broadcast.
struct GoldenInputs {
  Tensor s = tg_test::seq({2, 3}, tg_test::sin_, 0.9);
  Tensor w = tg_test::seq({2, 3}, tg_test::sin_, 3.0) + 0.3;
  Tensor p = tg_test::seq({2, 3}, [](double i) { const double c = std::cos(i); return c * c * 4 + 0.25; });
  Tensor q = p + 0.8;
  Tensor c = tg_test::seq({3}, tg_test::cos_, 2.0);
};

}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   s = seq((2, 3), torch.sin) * 0.9; w = seq((2, 3), torch.sin, 3.0) + 0.3
//   p = seq((2, 3), torch.cos) ** 2 * 4 + 0.25; q = p + 0.8; c = seq((3,), torch.cos, 2.0)
//   for each op and its inputs below: y = op(*inputs); y.backward(seq(y.shape, torch.cos));
//   print y and each input's grad with "%.17g" (the script: torch.log1p(p - 0.5), torch.expm1(w),
//   torch.log2(p), torch.log10(p), torch.reciprocal(w), torch.square(w), torch.tan(s),
//   torch.asin(s), torch.acos(s), torch.atan(w), torch.sinh(w), torch.cosh(w), torch.asinh(w),
//   torch.acosh(q), torch.atanh(s), torch.erf(w), torch.erfc(w), torch.floor(w), torch.ceil(w),
//   torch.trunc(w), torch.round(w * 2), torch.sign(w), torch.frac(w), torch.atan2(w, s),
//   torch.atan2(w, c))
TEST_CASE("math functions and rounding match PyTorch, values and gradients") {
  const GoldenInputs in;
  const Tensor& s = in.s;
  const Tensor& w = in.w;
  const Tensor& p = in.p;
  const Tensor& q = in.q;
  const Tensor& c = in.c;
  tg_test::check_golden({
      {"log1p", [](const Inputs& x) { return tg::log1p(x[0]); }, {p - 0.5},
       {1.5581446180465499, 0.6511298505074693, 0.36652520126089322, 1.5412319969233514, 0.89975473573619957, 0.069392603973896669},
       {{0.21052631578947367, 0.2817440284195839, -0.28844746409905997, -0.21197436911988946, -0.26581685190622623, 0.2646455645231916}}},
      {"expm1", [](const Inputs& x) { return tg::expm1(x[0]); }, {w},
       {0.34985880757600307, 15.851049747684669, 19.653654569444285, 1.061347765938212, -0.86059995891436303, -0.9239810649239093},
       {{1.3498588075760032, 9.1046610349727608, -8.594953012211672, -2.0407188211629212, -0.091117947603752025, 0.021563697260270995}}},
      {"log2", [](const Inputs& x) { return tg::log2(x[0]); }, {p},
       {2.0874628412503395, 0.50355871410369546, -0.085109841847586395, 2.0601652070149163, 0.97011734780915504, -0.80627381344525539},
       {{0.33945765667975608, 0.54982575901890374, -0.63685674358347133, -0.34247976640246264, -0.48137235471041473, 0.71563007862365902}}},
      {"log10", [](const Inputs& x) { return tg::log10(x[0]); }, {p},
       {0.62838893005031149, 0.15158627752319537, -0.025620615322341056, 0.62017152333478509, 0.29203442100454291, -0.2427126025654068},
       {{0.10218693691841221, 0.16551404585340579, -0.19171298275950957, -0.10309668259513462, -0.14490751785123657, 0.21542611946509463}}},
      {"reciprocal", [](const Inputs& x) { return tg::reciprocal(x[0]); }, {w},
       {3.3333333333333335, 0.35405587502130909, 0.33026273967792869, 1.3824374676139304, -0.50750923712166618, -0.38808232945106058},
       {{-11.111111111111112, -0.067729899546225769, 0.045390582496121393, 1.8920076783470476, 0.16835612823426244, -0.042721764482641804}}},
      {"square", [](const Inputs& x) { return tg::square(x[0]); }, {w},
       {0.089999999999999997, 7.9773085371163521, 9.1681316621724793, 0.52324972458111385, 3.8825056605844885, 6.6397581864503872},
       {{0.59999999999999998, 3.0520736639979287, -2.5200955878520701, -1.4322419925570449, 2.5758885673519778, -1.4618660213901735}}},
      {"tan", [](const Inputs& x) { return tg::tan(x[0]); }, {s},
       {0, 0.94537076898943839, 1.0682126987606391, 0.12769536620952848, -0.81051918148439905, -1.1687035029733825},
       {{1, 1.0231844655136835, -0.8910029903890726, -1.0061354197350845, -1.0830491393593462, 0.67110725275165262}}},
      {"asin", [](const Inputs& x) { return tg::asin(x[0]); }, {s},
       {0, 0.85920538382372647, 0.95856493072743487, 0.12735197172208162, -0.749294311306133, -1.0412411284008003},
       {{1, 0.82736548433181512, -0.7241177363927993, -0.99807521736895155, -0.89274878580273165, 0.56154104483890888}}},
      {"acos", [](const Inputs& x) { return tg::acos(x[0]); }, {s},
       {1.5707963267948966, 0.71159094297117009, 0.61223139606746169, 1.4434443550728149, 2.3200906381010298, 2.6120374551956966},
       {{-1, -0.82736548433181512, 0.7241177363927993, 0.99807521736895155, 0.89274878580273165, -0.56154104483890888}}},
      {"atan", [](const Inputs& x) { return tg::atan(x[0]); }, {w},
       {0.2914567944778671, 1.230512835067864, 1.2518118476879929, 0.62623240085593479, -1.1011593900422993, -1.2006058327124871},
       {{0.9174311926605504, 0.060185333235933662, -0.040926578291201068, -0.64992133635388538, -0.13387462632974476, 0.037129733499460721}}},
      {"sinh", [](const Inputs& x) { return tg::sinh(x[0]); }, {w},
       {0.3045202934471426, 8.3958531318745262, 10.302618494054183, 0.78811413237193906, -3.517099496200776, -6.5392991924626225},
       {{1.0453385141288605, 4.5683622280907121, -4.3075509177589382, -1.2604917436499314, -2.3900475972380129, 1.876515597592129}}},
      {"cosh", [](const Inputs& x) { return tg::cosh(x[0]); }, {w},
       {1.0453385141288605, 8.4551966158101433, 10.3510360753901, 1.2732336335662731, 3.6564995372864133, 6.6153181275387132},
       {{0.3045202934471426, 4.5362988068820496, -4.2874020944527329, -0.78022707751298992, 2.2989296496342604, -1.854951900331858}}},
      {"asinh", [](const Inputs& x) { return tg::asinh(x[0]); }, {w},
       {0.29567304756342244, 1.7614082725981783, 1.8272300633306544, 0.67169882961020289, -1.430322429777217, -1.6753724724041665},
       {{0.95782628522115132, 0.18032824051384005, -0.13050465925238944, -0.80213293559788512, -0.2958146302939349, 0.10262700107731977}}},
      {"acosh", [](const Inputs& x) { return tg::acosh(x[0]); }, {q},
       {2.3025850929940459, 1.4344071737752864, 1.1537204137972685, 2.2863586808558019, 1.6734256372892096, 0.83768074256418146},
       {{0.20202020202020202, 0.27295580660042834, -0.29157211831859775, -0.20333796326995246, -0.2541978990448055, 0.30204333186911037}}},
      {"atanh", [](const Inputs& x) { return tg::atanh(x[0]); }, {s},
       {0, 0.98990986149798876, 1.1518550498510522, 0.12769761762856988, -0.83120451954220687, -1.3051060137591446},
       {{1, 1.266945628824836, -1.2600035615054641, -1.006223928915414, -1.2193194718235496, 1.1116333483923344}}},
      {"erf", [](const Inputs& x) { return tg::erf(x[0]); }, {w},
       {0.32862675945912739, 0.99993512066141232, 0.99998148508808027, 0.69368532514533277, -0.99467320371388979, -0.9997316782939204},
       {{1.0312609096189631, 0.00020921402856595959, -4.8981566080753274e-05, -0.66197638094028, -0.01519306171857873, 0.00041845249566067525}}},
      {"erfc", [](const Inputs& x) { return tg::erfc(x[0]); }, {w},
       {0.67137324054087255, 6.4879338587725416e-05, 1.8514911919753749e-05, 0.30631467485466729, 1.9946732037138897, 1.9997316782939203},
       {{-1.0312609096189631, -0.00020921402856595959, 4.8981566080753274e-05, 0.66197638094028, 0.01519306171857873, -0.00041845249566067525}}},
      {"floor", [](const Inputs& x) { return tg::floor(x[0]); }, {w},
       {0, 2, 3, 0, -2, -3},
       {{0, 0, 0, 0, 0, 0}}},
      {"ceil", [](const Inputs& x) { return tg::ceil(x[0]); }, {w},
       {1, 3, 4, 1, -1, -2},
       {{0, 0, 0, 0, 0, 0}}},
      {"trunc", [](const Inputs& x) { return tg::trunc(x[0]); }, {w},
       {0, 2, 3, 0, -1, -2},
       {{0, 0, 0, 0, 0, 0}}},
      {"round", [](const Inputs& x) { return tg::round(x[0]); }, {w * 2.0},
       {1, 6, 6, 1, -4, -5},
       {{0, 0, 0, 0, 0, 0}}},
      {"sign", [](const Inputs& x) { return tg::sign(x[0]); }, {w},
       {1, 1, 1, 1, -1, -1},
       {{0, 0, 0, 0, 0, 0}}},
      {"frac", [](const Inputs& x) { return tg::frac(x[0]); }, {w},
       {0.29999999999999999, 0.82441295442368911, 0.027892280477044729, 0.72336002417960166, -0.97040748592378434, -0.57677282398941543},
       {{1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625}}},
      {"atan2", [](const Inputs& x) { return tg::atan2(x[0], x[1]); }, {w, s},
       {1.5707963267948966, 1.3088236130515893, 1.3068269341211849, 1.3969873413714666, -1.9036136982522753, -1.8939808631307082},
       {{0, 0.047853013150083515, -0.034617408192914118, -0.2331135699798611, 0.10243139446279007, -0.03315143561784057},
        {-3.333333333333333, -0.17846613937504344, 0.12808152749481888, 1.3276724929646004, -0.29632211793759755, 0.098980957254065791}}},
      {"atan2 broadcast", [](const Inputs& x) { return tg::atan2(x[0], x[1]); }, {w, c},
       {0.14888994760949725, 1.2053842226328877, 1.8390468698201963, 0.34704204643812764, -1.0691694200367585, -1.8832168443807147},
       {{0.48899755501222497, 0.063843872550697359, 0.035124413728530236, -0.43773506079951219, -0.13986151727627641, -0.032197910368406427},
        {0.084970388830263532, -0.42189866337333526, 0.2274673564531694}}},
  });
}

// torch 1.13: torch.round(torch.tensor(v, dtype=d), decimals=k).tolist() for the lists below;
// torch.sign and torch.frac of the special values.
TEST_CASE("round with decimals, sign and frac follow PyTorch on ties, signed zeros, NaN and overflow") {
  auto values = [](const Tensor& t) { return t.to_vector<double>(); };
  auto same = [](const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("element ", i, ": got ", got[i], ", expected ", want[i]);
      if (std::isnan(want[i])) {
        CHECK(std::isnan(got[i]));
      } else {
        CHECK(got[i] == want[i]);
        CHECK(std::signbit(got[i]) == std::signbit(want[i]));
      }
    }
  };
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  same(values(tg::round(Tensor(std::vector<double>{1.2345, -2.5, 1234.5, 0.125, -0.004, 2.675}, {6}), 2)),
       {1.23, -2.5, 1234.5, 0.12, -0.0, 2.68});
  same(values(tg::round(Tensor(std::vector<float>{1234.5f, 1250.f, 1350.f, -49.0f, 1e30f}, {5}), -2)),
       {1200.0, 1200.0, 1400.0, -0.0, 1.00000009060533e+30});
  same(values(tg::round(Tensor(std::vector<float>{1e38f, 3.4e38f, 1.5f}, {3}), 3)), {inf, inf, 1.5});
  same(values(tg::round(Tensor(std::vector<float>{1e38f, 0.0f}, {2}), -40)), {nan, nan});
  same(values(tg::round(Tensor(std::vector<float>{0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 8388609.0f, 0.49999997f}, {7}))),
       {0.0, 2.0, 2.0, -0.0, -2.0, 8388609.0, 0.0});
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    INFO(tg::dtype_name(dtype));
    const Tensor special = Tensor(std::vector<double>{-0.0, 0.0, nan, -inf, inf, 3.0, -1e-300}, {7}).to(dtype);
    // (-1e-300 is -0 in float32, whose sign is 0; a float32 subnormal keeps its sign below)
    same(values(tg::sign(special)), {0.0, 0.0, 0.0, -1.0, 1.0, 1.0, dtype == tg::kFloat32 ? 0.0 : -1.0});
    same(values(tg::sign(Tensor(std::vector<double>{-1e-45, 1e-45}, {2}).to(dtype))), {-1.0, 1.0});
    same(values(tg::frac(Tensor(std::vector<double>{-3.0, -0.0, 2.75, -2.75, inf, nan}, {6}).to(dtype))),
         {0.0, 0.0, 0.75, -0.75, nan, nan});
    same(values(tg::floor(Tensor(std::vector<double>{-0.0, -0.5, 0.5, -inf, 2.0}, {5}).to(dtype))), {-0.0, -1.0, 0.0, -inf, 2.0});
    same(values(tg::ceil(Tensor(std::vector<double>{-0.0, -0.5, 0.5, inf, -2.0}, {5}).to(dtype))), {-0.0, -0.0, 1.0, inf, -2.0});
    same(values(tg::trunc(Tensor(std::vector<double>{-0.0, -0.5, 1.5, -1.5}, {4}).to(dtype))), {-0.0, -0.0, 1.0, -1.0});
  }
}

namespace {

// |got - exact| in units of the spacing of the floats at exact rounded to T (a subnormal's is the
// smallest subnormal); 0 when both are the same NaN, infinity or zero (with its sign), and
// infinite when they differ there.
template <class T>
double ulps_from(T got, long double exact) {
  const T rounded = T(exact);
  if (std::isnan(rounded) || std::isnan(got)) return std::isnan(rounded) == std::isnan(got) ? 0.0 : INFINITY;
  if (std::isinf(rounded) || rounded == T(0) || std::isinf(got))
    return got == rounded && std::signbit(got) == std::signbit(rounded) ? 0.0 : INFINITY;
  const T spacing = std::nextafter(std::abs(rounded), std::numeric_limits<T>::infinity()) - std::abs(rounded);
  return double(std::abs((long double)got - exact) / (long double)spacing);
}

// Every power of two of T's range (subnormals included) times six mantissas, both signs; a grid
// of step 1/512 over [-24, 24]; zeros, infinities, NaN, the extremes, halves.
template <class T>
std::vector<T> whole_range() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {T(0), -T(0), L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(), -L::denorm_min(),
                      L::min(), -L::min(), L::max(), -L::max(), T(0.5), T(-0.5), T(1.5), T(2.5), T(-2.5), T(1), T(-1)};
  for (int e = L::min_exponent - L::digits; e < L::max_exponent; ++e)
    for (double m : {1.0, 1.1, 1.37, 1.5, 1.77, 1.99}) {
      const T x = std::ldexp(T(m), e);
      if (std::isfinite(x)) v.insert(v.end(), {x, -x});
    }
  for (int i = -24 * 512; i <= 24 * 512; ++i) v.push_back(T(i) / T(512));
  return v;
}

struct RangeCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  long double (*exact)(long double);
  double ulps;
};

long double sign_of(long double x) { return x > 0 ? 1.0L : x < 0 ? -1.0L : 0.0L; }
long double frac_of(long double x) { return x - std::trunc(x); }

template <class T>
void check_whole_range(const RangeCase& c) {
  const std::vector<T> xs = whole_range<T>();
  const std::vector<T> got = c.op(Tensor(std::vector<T>(xs), {xs.size()})).template to_vector<T>();
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double u = ulps_from<T>(got[i], c.exact((long double)xs[i]));
    if (!(u <= worst)) worst = u, at = i;
  }
  INFO(std::string(c.name), " in ", (sizeof(T) == 4 ? "float32" : "float64"), ": worst ", worst, " ulp at x = ", double(xs[at]),
       ": got ", double(got[at]), ", exactly ", double(c.exact((long double)xs[at])));
  CHECK(worst <= c.ulps);
}

}  // namespace

TEST_CASE("every math function is within a few ulp of the C library over the whole range of both dtypes") {
  // (exact, correctly rounded: ulps 0.5; xsimd's approximations: 4 at most, 3.1 measured for
  // float asinh)
  const std::vector<RangeCase> cases = {
      {"exp", [](const Tensor& x) { return tg::exp(x); }, [](long double x) { return std::exp(x); }, 4},
      {"log", [](const Tensor& x) { return tg::log(x); }, [](long double x) { return std::log(x); }, 4},
      {"log1p", [](const Tensor& x) { return tg::log1p(x); }, [](long double x) { return std::log1p(x); }, 4},
      {"expm1", [](const Tensor& x) { return tg::expm1(x); }, [](long double x) { return std::expm1(x); }, 4},
      {"log2", [](const Tensor& x) { return tg::log2(x); }, [](long double x) { return std::log2(x); }, 4},
      {"log10", [](const Tensor& x) { return tg::log10(x); }, [](long double x) { return std::log10(x); }, 4},
      {"reciprocal", [](const Tensor& x) { return tg::reciprocal(x); }, [](long double x) { return 1 / x; }, 0.5},
      {"square", [](const Tensor& x) { return tg::square(x); }, [](long double x) { return x * x; }, 0.5},
      {"tan", [](const Tensor& x) { return tg::tan(x); }, [](long double x) { return std::tan(x); }, 4},
      {"asin", [](const Tensor& x) { return tg::asin(x); }, [](long double x) { return std::asin(x); }, 4},
      {"acos", [](const Tensor& x) { return tg::acos(x); }, [](long double x) { return std::acos(x); }, 4},
      {"atan", [](const Tensor& x) { return tg::atan(x); }, [](long double x) { return std::atan(x); }, 4},
      {"sinh", [](const Tensor& x) { return tg::sinh(x); }, [](long double x) { return std::sinh(x); }, 4},
      {"cosh", [](const Tensor& x) { return tg::cosh(x); }, [](long double x) { return std::cosh(x); }, 4},
      {"asinh", [](const Tensor& x) { return tg::asinh(x); }, [](long double x) { return std::asinh(x); }, 4},
      {"acosh", [](const Tensor& x) { return tg::acosh(x); }, [](long double x) { return std::acosh(x); }, 4},
      {"atanh", [](const Tensor& x) { return tg::atanh(x); }, [](long double x) { return std::atanh(x); }, 4},
      {"erf", [](const Tensor& x) { return tg::erf(x); }, [](long double x) { return std::erf(x); }, 4},
      {"erfc", [](const Tensor& x) { return tg::erfc(x); }, [](long double x) { return std::erfc(x); }, 4},
      {"floor", [](const Tensor& x) { return tg::floor(x); }, [](long double x) { return std::floor(x); }, 0},
      {"ceil", [](const Tensor& x) { return tg::ceil(x); }, [](long double x) { return std::ceil(x); }, 0},
      {"trunc", [](const Tensor& x) { return tg::trunc(x); }, [](long double x) { return std::trunc(x); }, 0},
      {"round", [](const Tensor& x) { return tg::round(x); }, [](long double x) { return std::nearbyint(x); }, 0},
      {"sign", [](const Tensor& x) { return tg::sign(x); }, sign_of, 0},
      {"frac", [](const Tensor& x) { return tg::frac(x); }, frac_of, 0},
  };
  for (const RangeCase& c : cases) {
    check_whole_range<float>(c);
    check_whole_range<double>(c);
  }
}

TEST_CASE("atan2 is within a few ulp of the C library on every pair of special and ordinary values") {
  auto check = [](auto zero) {
    using T = decltype(zero);
    using L = std::numeric_limits<T>;
    const std::vector<T> v = {T(0), -T(0), L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(), -L::min(),
                              L::max(), -L::max(), T(1), T(-1), T(3), T(-4), T(1e-20), T(-2.5e15)};
    std::vector<T> ys, xs;
    for (T y : v)
      for (T x : v) ys.push_back(y), xs.push_back(x);
    for (int i = 0; i < 4000; ++i) {  // the four quadrants, angles from 0 to 2π
      const double angle = i * 0.00157079632679, radius = 0.01 + i * 0.37;
      ys.push_back(T(radius * std::sin(angle))), xs.push_back(T(radius * std::cos(angle)));
    }
    const std::vector<T> got = tg::atan2(Tensor(std::vector<T>(ys), {ys.size()}), Tensor(std::vector<T>(xs), {xs.size()}))
                                   .template to_vector<T>();
    for (std::size_t i = 0; i < ys.size(); ++i) {
      INFO((sizeof(T) == 4 ? "float32" : "float64"), " atan2(", double(ys[i]), ", ", double(xs[i]), ") = ", double(got[i]));
      CHECK(ulps_from<T>(got[i], std::atan2((long double)ys[i], (long double)xs[i])) <= 4);
    }
  };
  check(0.0f);
  check(0.0);
}

TEST_CASE("gradcheck: the math functions, atan2 with broadcasting, and rounding") {
  tg::manual_seed(7);
  // Rounding ops away from their steps (k + 0.2 .. k + 0.8), where their gradient is 0.
  auto off_steps = [](const tg::Shape& shape) {
    return (tg::floor(uniform64(shape, -3, 3)) + tg::rand(shape, tg::kFloat64) * 0.6 + 0.2).detach().set_requires_grad();
  };
  const std::vector<std::pair<const char*, std::function<Tensor(const Inputs&)>>> unary = {
      {"log1p", [](const Inputs& x) { return tg::log1p(x[0]); }},   {"expm1", [](const Inputs& x) { return tg::expm1(x[0]); }},
      {"log2", [](const Inputs& x) { return tg::log2(x[0]); }},     {"log10", [](const Inputs& x) { return tg::log10(x[0]); }},
      {"reciprocal", [](const Inputs& x) { return tg::reciprocal(x[0]); }},
      {"square", [](const Inputs& x) { return tg::square(x[0]); }}, {"tan", [](const Inputs& x) { return tg::tan(x[0]); }},
      {"asin", [](const Inputs& x) { return tg::asin(x[0] - 1.0); }},
      {"acos", [](const Inputs& x) { return tg::acos(x[0] - 1.0); }},
      {"atan", [](const Inputs& x) { return tg::atan(x[0] * 3.0); }},
      {"sinh", [](const Inputs& x) { return tg::sinh(x[0] * 3.0); }},
      {"cosh", [](const Inputs& x) { return tg::cosh(x[0] * 3.0 - 1.5); }},
      {"asinh", [](const Inputs& x) { return tg::asinh(x[0] * 4.0 - 2.0); }},
      {"acosh", [](const Inputs& x) { return tg::acosh(x[0] + 0.6); }},
      {"atanh", [](const Inputs& x) { return tg::atanh(x[0] - 1.0); }},
      {"erf", [](const Inputs& x) { return tg::erf(x[0] * 2.0 - 1.0); }},
      {"erfc", [](const Inputs& x) { return tg::erfc(x[0] * 2.0 - 1.0); }},
  };
  for (const auto& [name, fn] : unary) {
    INFO(name);
    CHECK_GRADCHECK(fn, Inputs{uniform64({2, 3}, 0.5, 1.5)});  // (0.5, 1.5): every domain above
  }
  for (const auto& [name, fn] : std::vector<std::pair<const char*, std::function<Tensor(const Inputs&)>>>{
           {"floor", [](const Inputs& x) { return tg::floor(x[0]) * x[0]; }},
           {"ceil", [](const Inputs& x) { return tg::ceil(x[0]) * x[0]; }},
           {"trunc", [](const Inputs& x) { return tg::trunc(x[0]) * x[0]; }},
           {"round", [](const Inputs& x) { return tg::round(x[0]) * x[0]; }},
           {"round decimals", [](const Inputs& x) { return tg::round(x[0] * 0.01, 1) + x[0]; }},
           {"sign", [](const Inputs& x) { return tg::sign(x[0]) * x[0]; }},
           {"frac", [](const Inputs& x) { return tg::frac(x[0]) * x[0]; }}}) {
    INFO(name);
    CHECK_GRADCHECK(fn, Inputs{off_steps({3, 4})});
  }
  CHECK_GRADCHECK([](const Inputs& x) { return tg::atan2(x[0], x[1]); }, (Inputs{uniform64({2, 3}), uniform64({2, 3})}));
  CHECK_GRADCHECK([](const Inputs& x) { return tg::atan2(x[0], x[1]); }, (Inputs{uniform64({2, 1, 3}), uniform64({4, 1})}));
  CHECK_GRADCHECK([](const Inputs& x) { return tg::atan2(x[0], x[1]); }, (Inputs{uniform64({}), uniform64({3})}));
}

TEST_CASE("rounding records a zero gradient, and atan2's gradient at the origin is NaN, as PyTorch's") {
  const Tensor x = Tensor(std::vector<double>{1.5, -0.5, 2.0}, {3}).set_requires_grad();
  (tg::sign(x) + tg::floor(x) + tg::ceil(x) + tg::trunc(x) + tg::round(x) + tg::round(x, 1) + tg::frac(x)).sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1.0, 1.0, 1.0});  // frac's 1; the others 0
  const Tensor y = Tensor(std::vector<double>{0.0, 1.0}, {2}).set_requires_grad();
  const Tensor z = Tensor(std::vector<double>{-0.0, 0.0}, {2}).set_requires_grad();
  tg::atan2(y, z).sum().backward();
  CHECK(std::isnan(y.grad().to_vector<double>()[0]));
  CHECK(std::isnan(z.grad().to_vector<double>()[0]));
  CHECK(y.grad().to_vector<double>()[1] == 0.0);
  CHECK(z.grad().to_vector<double>()[1] == -1.0);
  // The methods are the functions.
  const Tensor v = Tensor(std::vector<float>{-1.25f, 0.5f, 3.75f}, {3});
  CHECK(v.floor().to_vector<float>() == tg::floor(v).to_vector<float>());
  CHECK(v.round(1).to_vector<float>() == tg::round(v, 1).to_vector<float>());
  CHECK(v.sign().to_vector<float>() == std::vector<float>{-1, 1, 1});
  CHECK(v.square().to_vector<float>() == std::vector<float>{1.5625f, 0.25f, 14.0625f});
  CHECK(v.reciprocal().to_vector<float>() == std::vector<float>{-0.8f, 2.0f, 1.0f / 3.75f});
}

TEST_CASE("the math functions refuse integer input and mismatched atan2 operands, naming the op") {
  const Tensor ints(std::vector<std::int64_t>{0, 1, 2, 3}, {4});
  CHECK_THROWS_WITH_AS(tg::log1p(ints), doctest::Contains("log1p"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::erf(ints), doctest::Contains("erf"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::floor(ints), doctest::Contains("floor"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::sign(ints), doctest::Contains("int64"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::atan2(tg::ones({2, 3}), tg::ones({2, 3}, tg::kFloat64)),
                       doctest::Contains("atan2: expected both inputs to have one dtype"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::atan2(tg::ones({2, 3}), tg::ones({4})), doctest::Contains("[2, 3] and [4] cannot be broadcast"),
                       tg::Error);
}
