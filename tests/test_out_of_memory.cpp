// Out of memory inside worker threads (issue 16 item 4): a bad_alloc in a sweep's, a capacity
// search's or the rank threads' work reaches the caller (exit 3 in the binary, "out of
// memory"), never std::terminate. This binary replaces the global operator new with one that
// can be told to refuse one large allocation (the n-th of at least kLarge bytes), as a machine
// out of memory refuses the request that does not fit while small ones still succeed; each test
// runs the same work with that failure at many points, in the calling thread and the workers.
// (Failing every allocation from some point on would also fail those nlohmann::json makes in
// its destructors, which end any program with std::terminate, ours or not.)
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "xring/executor/communicator.hpp"
#include "xring/planner/recommend.hpp"
#include "xring/planner/sweep.hpp"

namespace {

constexpr std::size_t kLarge = 4096;
/// Large allocations still to succeed before one fails; negative: none fails.
std::atomic<long> large_left{-1};
/// Large allocations made so far (counted while large_left is not negative).
std::atomic<long> large_made{0};
/// The thread that runs the tests, and how many refused allocations were another thread's.
const std::thread::id test_thread = std::this_thread::get_id();
std::atomic<int> refused_in_other_threads{0};

void* allocate(std::size_t n) {
  if (n >= kLarge && large_left.load(std::memory_order_relaxed) >= 0) {
    large_made.fetch_add(1, std::memory_order_relaxed);
    if (large_left.fetch_sub(1, std::memory_order_relaxed) == 0) {
      if (std::this_thread::get_id() != test_thread) ++refused_in_other_threads;
      throw std::bad_alloc();
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's buffer): all forms must come from one allocator,
// or AddressSanitizer reports "operator new vs free". They never refuse on purpose.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

enum class Outcome { completed, out_of_memory };

/// Runs `work` with its large allocation number `n` (from 0) failing; the only exception
/// allowed out is std::bad_alloc. A std::terminate would end this test binary.
template <typename Work>
Outcome with_large_allocation_failing(long n, Work&& work) {
  large_left = n;
  Outcome outcome = Outcome::completed;
  try {
    work();
  } catch (const std::bad_alloc&) {
    outcome = Outcome::out_of_memory;
  }
  large_left = -1;
  return outcome;
}

/// How many large allocations `work` makes when none fails.
template <typename Work>
long large_allocations_of(Work&& work) {
  large_made = 0;
  large_left = 1L << 60;
  work();
  large_left = -1;
  return large_made;
}

/// Fails one large allocation at up to 40 points spread over the work's: each run must end in
/// its result or a bad_alloc here, and some of the refusals must have been in worker threads.
/// (With two threads the large allocations a run makes vary a little, so a failure planned
/// near the end may not come.)
template <typename Work>
void fails_cleanly_everywhere(Work&& work) {
  const long total = large_allocations_of(work);
  ASSERT_GE(total, 10);
  const long points = std::min(total, 40L);
  int out_of_memory = 0;
  refused_in_other_threads = 0;
  for (long k = 0; k < points; ++k)
    if (with_large_allocation_failing(total * k / points, work) == Outcome::out_of_memory)
      ++out_of_memory;
  EXPECT_GE(out_of_memory, points / 2);
  EXPECT_GT(refused_in_other_threads, 0);
  EXPECT_EQ(with_large_allocation_failing(-1, work), Outcome::completed);
}

}  // namespace

TEST(OutOfMemory, InASweepsWorkersReachesTheCaller) {
  xring::SweepRequest r;
  r.model = "tiny";
  r.cluster = "h100-sxm-8";
  r.workload = "video-qa";
  r.axes.push_back(xring::parse_vary("workload.frames=1..64:+1"));
  r.threads = 2;
  fails_cleanly_everywhere([&] { xring::run_sweep(r, [](const xring::SweepPoint&) {}); });
}

TEST(OutOfMemory, InACapacitySearchsWorkersReachesTheCaller) {
  xring::RecommendRequest r;
  r.model = "llama-3.2-11b-vision";
  r.workload = "video-qa";
  r.gpus = {"h100-sxm", "a100-80gb"};
  r.max_gpus = 16;
  r.gpus_per_node = {1, 2, 4, 8};
  r.requirements = {"frames_per_s>=300"};  // each plan is read back as a gate document
  r.prune = false;                         // every shape planned: the same work each run
  r.threads = 2;
  fails_cleanly_everywhere([&] { xring::recommend(r); });
}

TEST(OutOfMemory, InARanksThreadAbortsTheOthers) {
  // The ranks pass messages round a ring. Wherever the first allocation fails (starting the
  // threads, in a send, in a rank's own work), the ranks waiting for a message must wake (the
  // world aborts) and the bad_alloc come back here.
  fails_cleanly_everywhere([&] {
    xring::executor::run_on_threads(
        4,
        [](xring::executor::Communicator& comm) {
          std::vector<float> data(1024, 1.0f);
          for (int step = 0; step < 8; ++step) {
            comm.send((comm.rank() + 1) % comm.size(), data, step);
            data = comm.recv((comm.rank() + comm.size() - 1) % comm.size(), step);
          }
        },
        10.0);
  });
}
