// A small persistent thread pool for data-parallel scans. OpenMP is avoided on
// purpose: FAISS uses OpenMP and the two runtimes would compete for cores.
#ifndef QVEC_INDEX_THREAD_POOL_H_
#define QVEC_INDEX_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace qvec::index {

// Thread safety: ParallelFor may be called concurrently from several threads
// and from inside a task (the caller always works on its own job, so nested
// calls cannot deadlock).
class ThreadPool {
 public:
  // `num_threads` counts the calling thread: num_threads - 1 workers are
  // started. 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(size_t num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const { return workers_.size() + 1; }

  // Runs fn(i) for every i in [0, num_tasks) on the workers and the calling
  // thread; returns when all calls have finished. fn must not throw.
  void ParallelFor(size_t num_tasks, const std::function<void(size_t)>& fn);

  // Process-wide pool sized to the machine.
  static ThreadPool& Default();

 private:
  struct Job;
  void WorkerLoop();
  // Runs tasks of `job` until none are left.
  static void Drain(Job* job);

  Mutex mu_;
  CondVar work_cv_;  // signalled when a job is queued or on stop
  CondVar done_cv_;  // signalled when a worker leaves a job
  std::deque<Job*> jobs_ QVEC_GUARDED_BY(mu_);
  bool stop_ QVEC_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_THREAD_POOL_H_
