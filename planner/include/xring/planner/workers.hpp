// Starting a pool of worker threads so that no failure leaves a joinable std::thread behind
// (whose destructor would call std::terminate).
#pragma once

#include <functional>
#include <thread>
#include <vector>

namespace xring {

/// Starts `count` threads, thread t running `work(t)`, appended to `pool`. If one cannot be started
/// (out of memory, no more threads), `stop` is called so that the running ones return, they are
/// joined, and the error is rethrown. `work` itself must not throw: it records its own failures.
void start_workers(std::vector<std::thread>& pool, int count, const std::function<void(int)>& work,
                   const std::function<void()>& stop);

}  // namespace xring
