// tg::Error and the one check helper every op and layer uses to fail.
//
// Messages always start with the op or layer name, then say what was wrong with which shapes,
// dtypes or values, e.g. "matmul: shapes [2, 3] and [4, 5] cannot be multiplied".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

// Streams every argument into one string; containers with begin()/end() print as "[a, b, c]".
template <class T>
void append(std::ostringstream& out, const T& value) {
  if constexpr (requires { value.begin(); value.end(); } && !std::is_convertible_v<T, std::string>) {
    out << '[';
    bool first = true;
    for (const auto& v : value) {
      if (!first) out << ", ";
      out << v;
      first = false;
    }
    out << ']';
  } else {
    out << value;
  }
}

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (append(out, args), ...);
  return out.str();
}

}  // namespace detail

// Builds a message from its pieces and throws it: fail("matmul: shapes ", a, " and ", b, " ...").
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace tg

// The single check helper: the message pieces are only evaluated when the check fails, so a check
// costs one branch on the hot path.
#define TG_CHECK(condition, ...)           \
  do {                                     \
    if (!(condition)) ::tg::fail(__VA_ARGS__); \
  } while (false)
