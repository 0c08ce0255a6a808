// Internal: range checks for reading JSON numbers into C++ integers.
//
//   if (auto why = sam3::json_number_problem<int64_t>(j["depth"])) throw ConfigError(*why);
//   int64_t depth = j["depth"].get<int64_t>();   // now well defined
//
// nlohmann::json converts a float (or a too large unsigned) to an integer with a
// plain cast, which is undefined behaviour out of range (3e23 -> int64_t) and
// silently truncates 1.5 to 1. json_number_problem says what is wrong with such
// a value for T (an integer type, or a std::vector of them, checked element by
// element); other types and values pass (nlohmann's own type errors remain).
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace sam3 {

template <typename T>
struct is_std_vector : std::false_type {};
template <typename U, typename A>
struct is_std_vector<std::vector<U, A>> : std::true_type {};

template <typename T>
std::optional<std::string> json_number_problem(const nlohmann::json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
    // max + 1 is a power of two, exact in a double (max itself may not be)
    constexpr double hi = static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2.0;
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) return v.dump() + " is not an integer";
      if (d < lo || d >= hi) return v.dump() + " is out of range";
    } else if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return v.dump() + " is out of range";
      }
    } else if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
        return v.dump() + " is out of range";
      }
    }
  } else if constexpr (is_std_vector<T>::value) {
    if (v.is_array()) {
      for (const auto& e : v) {
        if (auto why = json_number_problem<typename T::value_type>(e)) return why;
      }
    }
  }
  return std::nullopt;
}

}  // namespace sam3
