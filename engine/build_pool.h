// The threads that run background index builds, shared by every collection
// of a database: builds queue here instead of each collection owning a
// thread, so many collections growing at once cannot oversubscribe the
// machine, and dropping a collection never waits for its build (a build task
// keeps its collection alive until it returns).
#ifndef QVEC_ENGINE_BUILD_POOL_H_
#define QVEC_ENGINE_BUILD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/mutex.h"

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

  Mutex mu_;
  CondVar cv_;  // signalled when a task is queued or on shutdown
  std::deque<std::function<void()>> queue_ QVEC_GUARDED_BY(mu_);
  bool stopping_ QVEC_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
  std::once_flag shutdown_once_;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_BUILD_POOL_H_
