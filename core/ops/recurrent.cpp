// The RNN, GRU and LSTM cells, fused. Each row of the batch holds its gates as contiguous blocks of H
// values, so every formula below runs over those blocks with the xsimd batch loop (kernels::apply),
// the gates recomputed where the backward needs them (cheaper than saving them).
//
// GRU, with g = dL/dh':   dz = g(h − n), dn = g(1 − z), dh = g·z
//   d(pre_n) = dn(1 − n²)           → d x_n = d(pre_n),  d h_n = d(pre_n)·r
//   d(pre_r) = d(pre_n)·h_n·r(1 − r) → d x_r = d h_r
//   d(pre_z) = dz·z(1 − z)          → d x_z = d h_z
// LSTM, with (gh, gc) = dL/d(h', c'):   t = tanh(c'),  dc = gc + gh·o(1 − t²)
//   d(pre_i) = dc·g·i(1 − i), d(pre_f) = dc·c·f(1 − f), d(pre_g) = dc·i(1 − g²),
//   d(pre_o) = gh·t·o(1 − o), dc_prev = dc·f; the input and hidden parts get the same gradient.
#include "core/ops/recurrent.hpp"
#include "core/xtensor.hpp"

#include <algorithm>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"

namespace tg {

namespace {

template <class B>
B sigmoid_of(B x) {
  return B(1) / (B(1) + kernels::exp_lanes(-x));
}

void check_cell(const char* op, const Tensor& input_part, const Tensor& hidden_part, const Tensor& state,
                std::size_t gates) {
  TG_CHECK(state.dim() == 2 && input_part.dim() == 2 && hidden_part.dim() == 2, op,
           ": expected 2-D parts and state, got ", shape_str(input_part.shape()), ", ", shape_str(hidden_part.shape()),
           " and ", shape_str(state.shape()));
  const Shape parts{state.shape()[0], gates * state.shape()[1]};
  TG_CHECK(input_part.shape() == parts && hidden_part.shape() == parts, op, ": expected parts of shape ",
           shape_str(parts), " for state ", shape_str(state.shape()), ", got ", shape_str(input_part.shape()), " and ",
           shape_str(hidden_part.shape()));
  TG_CHECK(input_part.dtype() == state.dtype() && hidden_part.dtype() == state.dtype() && is_floating(state.dtype()),
           op, ": expected one floating-point dtype, got ", dtype_name(input_part.dtype()), ", ",
           dtype_name(hidden_part.dtype()), " and ", dtype_name(state.dtype()));
}

// Runs body(row) for every row of the batch, in parallel above the grain.
template <class Body>
void rows(std::size_t n, std::size_t width, Body&& body) {
  parallel::for_range(n, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(width, 1)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t b = first; b < last; ++b) body(b);
                      });
}

}  // namespace

Tensor rnn_cell(const Tensor& input_part, const Tensor& hidden_part, const std::string& nonlinearity) {
  TG_CHECK(nonlinearity == "tanh" || nonlinearity == "relu", "rnn_cell: nonlinearity must be \"tanh\" or \"relu\", "
           "got \"", nonlinearity, "\"");
  TG_CHECK(input_part.dim() == 2 && input_part.shape() == hidden_part.shape(), "rnn_cell: expected two 2-D parts of "
           "one shape, got ", shape_str(input_part.shape()), " and ", shape_str(hidden_part.shape()));
  TG_CHECK(input_part.dtype() == hidden_part.dtype() && is_floating(input_part.dtype()), "rnn_cell: expected one "
           "floating-point dtype, got ", dtype_name(input_part.dtype()), " and ", dtype_name(hidden_part.dtype()));
  const bool relu = nonlinearity == "relu";
  // relu keeps NaN, as tg::relu and PyTorch's.
  Tensor out = relu ? pointwise("rnn_cell", [](auto a, auto b) {
                        const auto s = a + b;
                        return pick(xsimd::isnan(s), s, xsimd::max(s, decltype(s)(0)));
                      }, input_part, hidden_part)
                    : pointwise("rnn_cell", [](auto a, auto b) { return xsimd::tanh(a + b); }, input_part, hidden_part);
  return record("rnn_cell", out, {input_part, hidden_part}, {out}, [out, relu](const Tensor& grad) -> Grads {
    const Tensor d = relu ? pointwise("rnn_cell", [](auto g, auto y) { return pick(y <= element_of<decltype(y)>(0), 0, g); },
                                      grad, out)
                          : pointwise("rnn_cell", [](auto g, auto y) { return g * (element_of<decltype(y)>(1) - y * y); },
                                      grad, out);
    return {d, d};
  });
}

Tensor gru_cell(const Tensor& input_part, const Tensor& hidden_part, const Tensor& h) {
  check_cell("gru_cell", input_part, hidden_part, h, 3);
  const std::size_t n = h.shape()[0], H = h.shape()[1];
  Tensor out = dispatch_floating(h.dtype(), "gru_cell", [&]<class T>() {
    xt::xarray<T> next = xt::xarray<T>::from_shape({n, H});
    const T* x = input_part.data<T>();
    const T* hp = hidden_part.data<T>();
    const T* hv = h.data<T>();
    rows(n, 3 * H, [&](std::size_t b) {
      const T* xr = x + b * 3 * H;
      const T* hr = hp + b * 3 * H;
      kernels::apply(H, next.data() + b * H, [](auto ar, auto az, auto an, auto br, auto bz, auto bn, auto hb) {
        using B = decltype(ar);
        const B r = sigmoid_of(ar + br), z = sigmoid_of(az + bz);
        const B m = xsimd::tanh(an + r * bn);
        return (B(1) - z) * m + z * hb;
      }, xr, xr + H, xr + 2 * H, hr, hr + H, hr + 2 * H, hv + b * H);
    });
    return make_tensor<T>(std::move(next));
  });
  return record("gru_cell", out, {input_part, hidden_part, h}, {input_part, hidden_part, h},
                [input_part, hidden_part, h, n, H](const Tensor& grad, NeedsGrad needs) -> Grads {
    return dispatch_floating(grad.dtype(), "gru_cell", [&]<class T>() {
      xt::xarray<T> d_input = xt::xarray<T>::from_shape({n, 3 * H}), d_hidden = xt::xarray<T>::from_shape({n, 3 * H});
      xt::xarray<T> d_h = xt::xarray<T>::from_shape({n, H});
      const T* x = input_part.data<T>();
      const T* hp = hidden_part.data<T>();
      const T* hv = h.data<T>();
      const T* g = grad.data<T>();
      rows(n, 3 * H, [&](std::size_t b) {
        const T* xr = x + b * 3 * H;
        const T* hr = hp + b * 3 * H;
        const T* gb = g + b * H;
        const T* hb = hv + b * H;
        T* di = d_input.data() + b * 3 * H;
        T* dh = d_hidden.data() + b * 3 * H;
        // d(pre_n), written to d x_n; then d h_n = d(pre_n)·r
        kernels::apply(H, di + 2 * H, [](auto ar, auto az, auto an, auto br, auto bz, auto bn, auto gv) {
          using B = decltype(ar);
          const B r = sigmoid_of(ar + br), z = sigmoid_of(az + bz), m = xsimd::tanh(an + r * bn);
          return gv * (B(1) - z) * (B(1) - m * m);
        }, xr, xr + H, xr + 2 * H, hr, hr + H, hr + 2 * H, gb);
        kernels::apply(H, dh + 2 * H, [](auto dn, auto ar, auto br) { return dn * sigmoid_of(ar + br); },
                       static_cast<const T*>(di + 2 * H), xr, hr);
        // d(pre_r) = d(pre_n)·h_n·r(1 − r)
        kernels::apply(H, di, [](auto dn, auto ar, auto br, auto bn) {
          using B = decltype(ar);
          const B r = sigmoid_of(ar + br);
          return dn * bn * r * (B(1) - r);
        }, static_cast<const T*>(di + 2 * H), xr, hr, hr + 2 * H);
        // d(pre_z) = g(h − n)·z(1 − z)
        kernels::apply(H, di + H, [](auto ar, auto az, auto an, auto br, auto bz, auto bn, auto gv, auto hv2) {
          using B = decltype(ar);
          const B r = sigmoid_of(ar + br), z = sigmoid_of(az + bz), m = xsimd::tanh(an + r * bn);
          return gv * (hv2 - m) * z * (B(1) - z);
        }, xr, xr + H, xr + 2 * H, hr, hr + H, hr + 2 * H, gb, hb);
        std::copy(di, di + 2 * H, dh);  // the r and z gates: the same gradient for both parts
        kernels::apply(H, d_h.data() + b * H, [](auto gv, auto az, auto bz) { return gv * sigmoid_of(az + bz); },
                       gb, xr + H, hr + H);
      });
      return Grads{needs[0] ? make_tensor<T>(std::move(d_input)) : Tensor(),
                   needs[1] ? make_tensor<T>(std::move(d_hidden)) : Tensor(),
                   needs[2] ? make_tensor<T>(std::move(d_h)) : Tensor()};
    });
  });
}

Tensor lstm_cell(const Tensor& input_part, const Tensor& hidden_part, const Tensor& c) {
  check_cell("lstm_cell", input_part, hidden_part, c, 4);
  const std::size_t n = c.shape()[0], H = c.shape()[1];
  Tensor out = dispatch_floating(c.dtype(), "lstm_cell", [&]<class T>() {
    xt::xarray<T> hc = xt::xarray<T>::from_shape({n, 2 * H});
    const T* x = input_part.data<T>();
    const T* hp = hidden_part.data<T>();
    const T* cv = c.data<T>();
    rows(n, 4 * H, [&](std::size_t b) {
      const T* xr = x + b * 4 * H;
      const T* hr = hp + b * 4 * H;
      T* row = hc.data() + b * 2 * H;
      // c' first (the second half of the row), then h' = o·tanh(c').
      kernels::apply(H, row + H, [](auto xi, auto xf, auto xg, auto hi, auto hf, auto hg, auto cb) {
        return sigmoid_of(xf + hf) * cb + sigmoid_of(xi + hi) * xsimd::tanh(xg + hg);
      }, xr, xr + H, xr + 2 * H, hr, hr + H, hr + 2 * H, cv + b * H);
      kernels::apply(H, row, [](auto xo, auto ho, auto cn) { return sigmoid_of(xo + ho) * xsimd::tanh(cn); },
                     xr + 3 * H, hr + 3 * H, static_cast<const T*>(row + H));
    });
    return make_tensor<T>(std::move(hc));
  });
  return record("lstm_cell", out, {input_part, hidden_part, c}, {input_part, hidden_part, c},
                [input_part, hidden_part, c, n, H](const Tensor& grad, NeedsGrad needs) -> Grads {
    return dispatch_floating(grad.dtype(), "lstm_cell", [&]<class T>() {
      xt::xarray<T> d_gates = xt::xarray<T>::from_shape({n, 4 * H});
      xt::xarray<T> d_c = xt::xarray<T>::from_shape({n, H});
      xt::xarray<T> dc_total = xt::xarray<T>::from_shape({n, H});
      const T* x = input_part.data<T>();
      const T* hp = hidden_part.data<T>();
      const T* cv = c.data<T>();
      const T* g = grad.data<T>();
      xt::xarray<T> c_next = xt::xarray<T>::from_shape({n, H});  // c', recomputed
      rows(n, 4 * H, [&](std::size_t b) {
        const T* xr = x + b * 4 * H;
        const T* hr = hp + b * 4 * H;
        const T* gh = g + b * 2 * H;
        const T* gc = gh + H;
        const T* cb = cv + b * H;
        kernels::apply(H, c_next.data() + b * H, [](auto xi, auto xf, auto xg, auto hi, auto hf, auto hg, auto cp) {
          return sigmoid_of(xf + hf) * cp + sigmoid_of(xi + hi) * xsimd::tanh(xg + hg);
        }, xr, xr + H, xr + 2 * H, hr, hr + H, hr + 2 * H, cb);
        const T* cn = c_next.data() + b * H;
        T* dc = dc_total.data() + b * H;
        T* dg = d_gates.data() + b * 4 * H;
        // dc = gc + gh·o(1 − tanh²(c'))
        kernels::apply(H, dc, [](auto ghv, auto gcv, auto xo, auto ho, auto cnv) {
          using B = decltype(ghv);
          const B t = xsimd::tanh(cnv);
          return gcv + ghv * sigmoid_of(xo + ho) * (B(1) - t * t);
        }, gh, gc, xr + 3 * H, hr + 3 * H, cn);
        const T* dcc = dc;
        kernels::apply(H, dg, [](auto d, auto xi, auto hi, auto xg, auto hg) {  // i
          using B = decltype(d);
          const B i = sigmoid_of(xi + hi);
          return d * xsimd::tanh(xg + hg) * i * (B(1) - i);
        }, dcc, xr, hr, xr + 2 * H, hr + 2 * H);
        kernels::apply(H, dg + H, [](auto d, auto xf, auto hf, auto cprev) {  // f
          using B = decltype(d);
          const B f = sigmoid_of(xf + hf);
          return d * cprev * f * (B(1) - f);
        }, dcc, xr + H, hr + H, cb);
        kernels::apply(H, dg + 2 * H, [](auto d, auto xi, auto hi, auto xg, auto hg) {  // g
          using B = decltype(d);
          const B gg = xsimd::tanh(xg + hg);
          return d * sigmoid_of(xi + hi) * (B(1) - gg * gg);
        }, dcc, xr, hr, xr + 2 * H, hr + 2 * H);
        kernels::apply(H, dg + 3 * H, [](auto ghv, auto xo, auto ho, auto cnv) {  // o
          using B = decltype(ghv);
          const B o = sigmoid_of(xo + ho);
          return ghv * xsimd::tanh(cnv) * o * (B(1) - o);
        }, gh, xr + 3 * H, hr + 3 * H, cn);
        kernels::apply(H, d_c.data() + b * H, [](auto d, auto xf, auto hf) { return d * sigmoid_of(xf + hf); },
                       dcc, xr + H, hr + H);
      });
      Tensor gates = make_tensor<T>(std::move(d_gates));
      return Grads{needs[0] ? gates : Tensor(), needs[1] ? gates : Tensor(),
                   needs[2] ? make_tensor<T>(std::move(d_c)) : Tensor()};
    });
  });
}

}  // namespace tg
