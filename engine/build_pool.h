// The threads that run background index builds, shared by every collection
// of a database: builds queue here instead of each collection owning a
// thread, so many collections growing at once cannot oversubscribe the
// machine, and dropping a collection never waits for its build (a build task
// keeps its collection alive until it returns).
#ifndef QVEC_ENGINE_BUILD_POOL_H_
#define QVEC_ENGINE_BUILD_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qvec::engine {

// Thread-safe.
class BuildPool {
 public:
  explicit BuildPool(size_t threads);
  // As Shutdown().
  ~BuildPool();
  BuildPool(const BuildPool&) = delete;
  BuildPool& operator=(const BuildPool&) = delete;

  // Queues `task`; false (and the task dropped) once shut down.
  bool Submit(std::function<void()> task);
  // Drops queued tasks and waits for running ones to return.
  void Shutdown();

 private:
  void Loop();

  std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::once_flag shutdown_once_;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_BUILD_POOL_H_
