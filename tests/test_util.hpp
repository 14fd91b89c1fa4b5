// Helpers shared by the planner tests.
#pragma once

#include <functional>
#include <string>

#include "xring/planner/error.hpp"

namespace xring::test {

/// The message of the xring::Error that `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace xring::test
