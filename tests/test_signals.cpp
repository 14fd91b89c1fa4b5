// Signals during an atomic write (issue 16): INT, TERM, HUP, QUIT and PIPE sent while `xring
// plan -o` holds its temporary file must end the command by that signal with neither the
// output nor any `*.tmp.<pid>` left behind. The binary's test hook
// XRING_TEST_HOLD_ATOMIC_WRITE makes it wait, temporaries written, until the signal comes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using xring::test::scratch_path;
using xring::test::xring_binary;

namespace {

/// Starts `xring plan --model tiny -o OUT` holding inside its atomic write (MARKER appears
/// when the temporary file is written); returns the child's pid.
pid_t start_held_plan(const fs::path& out, const fs::path& marker) {
  const std::string binary = xring_binary(), out_path = out.string();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("XRING_TEST_HOLD_ATOMIC_WRITE", marker.c_str(), 1);
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // QUIT dumps core by default
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::execl(binary.c_str(), "xring", "plan", "--model", "tiny", "-o", out_path.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

/// Waits up to 60 s for `path` to exist.
bool appears(const fs::path& path) {
  for (int ms = 0; ms < 60000; ms += 10) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// Files in `folder` whose name starts with `stem`.
int files_named_like(const fs::path& folder, const std::string& stem) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(folder))
    n += e.path().filename().string().rfind(stem, 0) == 0;
  return n;
}

class SignalDuringAtomicWrite : public ::testing::TestWithParam<int> {};

}  // namespace

TEST_P(SignalDuringAtomicWrite, LeavesNeitherOutputNorTemporaryFile) {
  const int sig = GetParam();
  const std::string stem = std::string("held_") + ::sigabbrev_np(sig);
  const fs::path out = scratch_path(stem + ".json"), marker = scratch_path(stem + ".marker");
  fs::remove(out);
  fs::remove(marker);
  const pid_t pid = start_held_plan(out, marker);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(appears(marker)) << "the child never reached its atomic write";
  // Held inside the write: the temporary exists, the output does not yet.
  EXPECT_EQ(files_named_like(out.parent_path(), stem + ".json.tmp."), 1);
  EXPECT_FALSE(fs::exists(out));
  ASSERT_EQ(::kill(pid, sig), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited " << WEXITSTATUS(status) << " instead";
  EXPECT_EQ(WTERMSIG(status), sig);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(files_named_like(out.parent_path(), stem + ".json"), 0);
}

INSTANTIATE_TEST_SUITE_P(FatalSignals, SignalDuringAtomicWrite,
                         ::testing::Values(SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(::sigabbrev_np(info.param));
                         });
