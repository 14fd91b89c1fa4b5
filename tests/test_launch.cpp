// Multi-process launch without GPUs: identity from flags and launchers' environments, the
// shared-file rendezvous (threads stand in for processes), and fault injection parsing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "xring/executor/communicator.hpp"
#include "xring/executor/rendezvous.hpp"
#include "xring/planner/error.hpp"

using namespace xring;
using namespace xring::executor;
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path fresh_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("xring_launch_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / name;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().string().rfind(p.string(), 0) == 0) fs::remove(e.path());
  return p;
}

TEST(Launch, IdentityFromFlagsOrTheLaunchersEnvironment) {
  auto id = launch_identity(2, 4, "/shared/rv", {});
  EXPECT_EQ(id.rank, 2);
  EXPECT_EQ(id.world, 4);
  EXPECT_EQ(id.source, "flags");
  id = launch_identity({}, {}, "/rv",
                       {{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}});
  EXPECT_EQ(id.rank, 3);
  EXPECT_EQ(id.source, "OpenMPI");
  id = launch_identity(
      {}, {}, "/rv",
      {{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "9"}});
  EXPECT_EQ(id.source, "Slurm");  // before torchrun's variables
  id = launch_identity({}, {}, "", {{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_EQ(id.source, "torchrun");
  EXPECT_EQ(id.world, 1);  // one process needs no rendezvous
}

TEST(Launch, IdentityErrorsSayWhatToPass) {
  EXPECT_NE(message_of([] { launch_identity({}, {}, "", {}); }).find("--rank R --world N"),
            std::string::npos);
  EXPECT_NE(message_of([] { launch_identity(1, {}, "/rv", {}); }).find("go together"),
            std::string::npos);
  EXPECT_NE(message_of([] { launch_identity(4, 4, "/rv", {}); }).find("outside 0..3"),
            std::string::npos);
  EXPECT_NE(message_of([] { launch_identity(0, 2, "", {}); }).find("--rendezvous FILE is required"),
            std::string::npos);
  EXPECT_NE(message_of([] {
              launch_identity({}, {}, "/rv", {{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}});
            }).find("SLURM_PROCID=\"x\""),
            std::string::npos);
  EXPECT_NE(message_of([] {
              launch_identity({}, {}, "/rv", {{"RANK", "1"}});
            }).find("WORLD_SIZE is missing"),
            std::string::npos);
}

void meet(const std::string& path, int world, std::vector<RendezvousResult>& out,
          std::vector<std::string>& errors, const std::vector<int>& absent = {},
          double timeout = 10) {
  out.assign(world, {});
  errors.assign(world, "");
  std::vector<std::thread> threads;
  const std::string blob("\x00\x01\xfeid-of-the-job", 15);
  for (int r = 0; r < world; ++r) {
    if (std::find(absent.begin(), absent.end(), r) != absent.end()) continue;
    threads.emplace_back([&, r] {
      try {
        out[r] = file_rendezvous(path, r, world, r == 0 ? blob : "", timeout);
      } catch (const Error& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST(Launch, RendezvousHandsRankZerosBlobToEveryRank) {
  for (int world : {1, 2, 3, 8}) {
    const std::string path = fresh_path("rv-" + std::to_string(world)).string();
    std::vector<RendezvousResult> out;
    std::vector<std::string> errors;
    meet(path, world, out, errors);
    for (int r = 0; r < world; ++r) {
      EXPECT_EQ(errors[r], "") << "rank " << r;
      EXPECT_EQ(out[r].blob, std::string("\x00\x01\xfeid-of-the-job", 15)) << "rank " << r;
      EXPECT_EQ(out[r].hosts.size(), size_t(world));
    }
    for (int r = 1; r < world; ++r)
      EXPECT_FALSE(fs::exists(path + ".rank" + std::to_string(r))) << "check-ins are cleaned up";
  }
}

TEST(Launch, RendezvousIgnoresAFileLeftByAnEarlierJob) {
  const std::string path = fresh_path("rv-stale").string();
  {
    std::ofstream stale(path);
    stale
        << R"({"world": 3, "tokens": ["a", "b", "c"], "hosts": ["x", "y", "z"], "blob": "6f6c64"})";
  }
  std::vector<RendezvousResult> out;
  std::vector<std::string> errors;
  meet(path, 3, out, errors);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(out[r].blob, std::string("\x00\x01\xfeid-of-the-job", 15));
}

TEST(Launch, RendezvousTimesOutNamingWhoIsMissing) {
  const std::string path = fresh_path("rv-missing").string();
  std::vector<RendezvousResult> out;
  std::vector<std::string> errors;
  meet(path, 4, out, errors, {2, 3}, 0.3);
  EXPECT_NE(errors[0].find("ranks 2, 3 of 4 did not check in"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("rank 1"), std::string::npos) << errors[1];
  EXPECT_NE(errors[1].find("for rank 0 to publish"), std::string::npos) << errors[1];
}

TEST(Launch, FaultSpecsParseOrSayTheFormat) {
  Fault f = parse_fault("1:3:drop");
  EXPECT_EQ(f.rank, 1);
  EXPECT_EQ(f.message, 3);
  EXPECT_EQ(f.kind, Fault::Kind::drop);
  for (const char* bad : {"1:3", "x:1:fail", "1:0:fail", "-1:1:fail", "1:1:explode", "1:2:fail:3"})
    EXPECT_NE(message_of([&] { parse_fault(bad); }).find("RANK:MESSAGE:fail|drop"),
              std::string::npos)
        << bad;
}

TEST(Launch, AnInjectedFailureAbortsEveryRank) {
  for (Fault::Kind kind : {Fault::Kind::fail, Fault::Kind::drop}) {
    std::string what = message_of([&] {
      run_on_threads(
          3,
          [&](Communicator& world) {
            FaultInjectingCommunicator comm(world, {1, 2, kind});
            for (int step = 0; step < 4; ++step) {
              comm.send((comm.rank() + 1) % 3, std::vector<float>(8, 1.0f), 0);
              comm.recv((comm.rank() + 2) % 3, 0);
            }
          },
          0.3);
    });
    EXPECT_NE(what, "");
    const char* expected = kind == Fault::Kind::fail ? "injected fault: rank 1" : "within 0.3 s";
    EXPECT_NE(what.find(expected), std::string::npos) << what;
  }
}

}  // namespace
