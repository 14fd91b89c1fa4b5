// Running the `xring` binary from tests: its exit code and output, test data and scratch paths.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace xring::test {

struct CliResult {
  int exit_code;       ///< -1 when the binary died of a signal
  std::string output;  ///< stdout and stderr together
};

/// The binary under test: XRING_BINARY from the environment, else the one this build made.
inline std::string xring_binary() {
  const char* chosen = std::getenv("XRING_BINARY");
  return chosen ? chosen : XRING_BINARY;
}

/// Runs `xring ARGS` through the shell (so ARGS may hold redirections and `ulimit`s go before).
inline CliResult run_xring(const std::string& args, const std::string& shell_prefix = "") {
  std::string command = shell_prefix + xring_binary() + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  CliResult r{-1, ""};
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe.release());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string test_data(const std::string& name) {
  const char* chosen = std::getenv("XRING_TEST_DATA");
  return std::string(chosen ? chosen : XRING_TEST_DATA) + "/" + name;
}

/// A path in this test process's own scratch folder.
inline std::filesystem::path scratch_path(const std::string& name) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("xring_hostile_tests_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

inline nlohmann::json read_json_at(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace xring::test
