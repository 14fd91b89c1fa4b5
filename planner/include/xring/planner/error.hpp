// xring::Error, the one exception type host code throws, and the CLI's exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace xring {

/// Exit codes of the `xring` binary (STYLE.md): the CLI maps every failure to one of these.
enum class ExitCode : int {
  ok = 0,
  regression = 1,  ///< a gate failed, or a requested requirement is not met
  bad_input = 2,   ///< a spec, plan, flag or override is invalid
  runtime = 3,     ///< a device or communication failure at run time
};

/// What went wrong, where, and what to do. `kind` picks the exit code.
class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, ExitCode kind = ExitCode::bad_input)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ExitCode kind() const { return kind_; }

 private:
  ExitCode kind_;
};

}  // namespace xring
