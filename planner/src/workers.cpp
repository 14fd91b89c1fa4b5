#include "xring/planner/workers.hpp"

namespace xring {

void start_workers(std::vector<std::thread>& pool, int count, const std::function<void(int)>& work,
                   const std::function<void()>& stop) {
  try {
    pool.reserve(pool.size() + static_cast<size_t>(count));
    for (int t = 0; t < count; ++t) pool.emplace_back(work, t);
  } catch (...) {
    stop();
    for (auto& t : pool)
      if (t.joinable()) t.join();
    throw;
  }
}

}  // namespace xring
