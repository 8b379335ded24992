// An optimizer's hyper-parameters are declared once: each Options class keeps its fields, their
// chained setters and getters, and one table of (name, member) rows, `fields()`. Saving and
// loading a state_dict, per-group access by name (schedulers' momentum cycling) and the "unknown
// option" errors all follow from that table.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../core/error.hpp"

namespace tg::optim {

// One row of an Options class's table. Owner is the class that declares the member (AdamWOptions
// uses AdamOptions's table).
template <class Owner>
struct OptionField {
  const char* name;
  std::variant<double Owner::*, bool Owner::*, std::pair<double, double> Owner::*> member;
};

// An option as saved: one number (bools are 0/1), or two for a pair (Adam's betas).
using OptionValue = std::vector<double>;
using OptionValues = std::vector<std::pair<std::string, OptionValue>>;

// Every option of `options`, in table order.
template <class Options>
OptionValues option_values(const Options& options) {
  OptionValues out;
  for (const auto& field : Options::fields())
    std::visit(
        [&](auto member) {
          const auto& value = options.*member;
          if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::pair<double, double>>)
            out.emplace_back(field.name, OptionValue{value.first, value.second});
          else
            out.emplace_back(field.name, OptionValue{double(value)});
        },
        field.member);
  return out;
}

// Sets the option called `name`; throws naming the optimizer when there is no such option or the
// value has the wrong size.
template <class Options>
void set_option_value(Options& options, const std::string& name, const OptionValue& value, const char* optimizer) {
  for (const auto& field : Options::fields()) {
    if (name != field.name) continue;
    std::visit(
        [&](auto member) {
          auto& target = options.*member;
          if constexpr (std::is_same_v<std::decay_t<decltype(target)>, std::pair<double, double>>) {
            TG_CHECK(value.size() == 2, optimizer, ": option \"", name, "\" takes 2 values, got ", value.size());
            target = {value[0], value[1]};
          } else {
            TG_CHECK(value.size() == 1, optimizer, ": option \"", name, "\" takes 1 value, got ", value.size());
            target = static_cast<std::decay_t<decltype(target)>>(value[0]);
          }
        },
        field.member);
    return;
  }
  fail(optimizer, ": there is no option \"", name, "\"");
}

// Whether Options has an option called `name`.
template <class Options>
bool has_option(const std::string& name) {
  for (const auto& field : Options::fields())
    if (name == field.name) return true;
  return false;
}

}  // namespace tg::optim
