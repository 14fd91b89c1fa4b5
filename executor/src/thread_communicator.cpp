// The thread backend: ranks are threads, messages are moved between per-(source, tag)
// mailboxes; a failed rank aborts the world so nobody waits forever.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

#include "xring/executor/communicator.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/workers.hpp"

namespace xring::executor {
namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

struct World {
  explicit World(int n, double timeout) : size(n), timeout_s(timeout) {}
  const int size;
  const double timeout_s;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::tuple<int, int, int>, std::deque<std::vector<float>>> mailboxes;  // (to, from, tag)
  bool aborted = false;
  int barrier_count = 0;
  long long barrier_generation = 0;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(World& world, int rank) : world_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return world_.size; }

  void send(int to, std::vector<float> data, int tag) override {
    bytes_sent_ += data.size() * sizeof(float);
    std::lock_guard<std::mutex> lock(world_.mutex);
    world_.mailboxes[{to, rank_, tag}].push_back(std::move(data));
    world_.changed.notify_all();
  }

  std::vector<float> recv(int from, int tag) override {
    std::unique_lock<std::mutex> lock(world_.mutex);
    auto& box = world_.mailboxes[{rank_, from, tag}];
    bool ready = world_.changed.wait_for(lock, std::chrono::duration<double>(world_.timeout_s),
                                         [&] { return !box.empty() || world_.aborted; });
    if (world_.aborted)
      throw Error("rank " + std::to_string(rank_) + ": a peer failed", ExitCode::runtime);
    if (!ready)
      throw Error("rank " + std::to_string(rank_) + ": no message from rank " +
                      std::to_string(from) + " (tag " + std::to_string(tag) + ") within " +
                      seconds_text(world_.timeout_s) + " (--timeout)",
                  ExitCode::runtime);
    std::vector<float> data = std::move(box.front());
    box.pop_front();
    return data;
  }

  void barrier() override {
    std::unique_lock<std::mutex> lock(world_.mutex);
    long long generation = world_.barrier_generation;
    if (++world_.barrier_count == world_.size) {
      world_.barrier_count = 0;
      ++world_.barrier_generation;
      world_.changed.notify_all();
      return;
    }
    world_.changed.wait(lock,
                        [&] { return world_.barrier_generation != generation || world_.aborted; });
    if (world_.aborted)
      throw Error("rank " + std::to_string(rank_) + ": a peer failed", ExitCode::runtime);
  }

 private:
  World& world_;
  int rank_;
};

}  // namespace

std::vector<std::vector<float>> Communicator::all_to_all(std::vector<std::vector<float>> parts,
                                                         int tag) {
  const int n = size(), me = rank();
  std::vector<std::vector<float>> received(n);
  for (int j = 0; j < n; ++j)
    if (j != me) send(j, std::move(parts[j]), tag);
  received[me] = std::move(parts[me]);
  for (int j = 0; j < n; ++j)
    if (j != me) received[j] = recv(j, tag);
  return received;
}

void Communicator::all_reduce_sum(std::vector<float>& values, int tag) {
  if (rank() != 0) {
    send(0, values, tag);
    values = recv(0, tag);
    return;
  }
  for (int j = 1; j < size(); ++j) {
    std::vector<float> part = recv(j, tag);
    for (size_t i = 0; i < values.size(); ++i) values[i] += part[i];
  }
  for (int j = 1; j < size(); ++j) send(j, values, tag);
}

Fault parse_fault(const std::string& text) {
  Fault f;
  const auto a = text.find(':'), b = text.rfind(':');
  bool ok = a != std::string::npos && b != a;
  try {
    if (ok) {
      size_t n1 = 0, n2 = 0;
      f.rank = std::stoi(text.substr(0, a), &n1);
      f.message = std::stoi(text.substr(a + 1, b - a - 1), &n2);
      const std::string kind = text.substr(b + 1);
      ok = n1 == a && n2 == b - a - 1 && f.rank >= 0 && f.message >= 1 &&
           (kind == "fail" || kind == "drop");
      f.kind = kind == "drop" ? Fault::Kind::drop : Fault::Kind::fail;
    }
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok)
    throw Error("--inject-fault " + text +
                ": expected RANK:MESSAGE:fail|drop, e.g. 1:3:drop (rank 1's third send is lost)");
  return f;
}

void FaultInjectingCommunicator::send(int to, std::vector<float> data, int tag) {
  if (rank() == fault_.rank && ++sends_ == fault_.message) {
    if (fault_.kind == Fault::Kind::fail)
      throw Error("injected fault: rank " + std::to_string(rank()) + " fails at its send #" +
                      std::to_string(sends_),
                  ExitCode::runtime);
    return;  // dropped: the peer waits for it until its timeout
  }
  inner_.send(to, std::move(data), tag);
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown host";
  return buf;
}

void run_on_threads(int ranks, const std::function<void(Communicator&)>& body, double timeout_s) {
  World world(ranks, timeout_s);
  std::exception_ptr first;
  std::mutex error_mutex;
  auto abort_world = [&] {
    std::lock_guard<std::mutex> lock(world.mutex);
    world.aborted = true;
    world.changed.notify_all();
  };
  auto rank_thread = [&](int r) {
    try {
      ThreadCommunicator comm(world, r);
      body(comm);
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first) first = std::current_exception();
      }
      abort_world();
    }
  };
  std::vector<std::thread> threads;
  start_workers(threads, ranks, rank_thread, abort_world);  // a rank that cannot start aborts all
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace xring::executor
