#include "index/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace qvec::index {

struct ThreadPool::Job {
  const std::function<void(size_t)>* fn;
  size_t num_tasks;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  size_t active_workers = 0;  // guarded by mu_
};

ThreadPool::ThreadPool(size_t num_threads) {
  if (num_threads == 0) {
    num_threads = std::max(1u, std::thread::hardware_concurrency());
  }
  for (size_t i = 1; i < num_threads; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  work_cv_.SignalAll();
  for (std::thread& t : workers_) {
    t.join();
  }
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = new ThreadPool(0);  // never destroyed: outlives static users
  return *pool;
}

void ThreadPool::Drain(Job* job) {
  for (;;) {
    const size_t i = job->next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job->num_tasks) {
      return;
    }
    (*job->fn)(i);
    job->done.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::WorkerLoop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (!stop_ && jobs_.empty()) work_cv_.Wait(&mu_);
    if (stop_) {
      return;
    }
    Job* job = jobs_.front();
    ++job->active_workers;
    lock.Unlock();
    Drain(job);
    lock.Lock();
    --job->active_workers;
    // Exhausted: make sure no other worker picks it up again.
    auto it = std::find(jobs_.begin(), jobs_.end(), job);
    if (it != jobs_.end()) {
      jobs_.erase(it);
    }
    done_cv_.SignalAll();
  }
}

void ThreadPool::ParallelFor(size_t num_tasks, const std::function<void(size_t)>& fn) {
  if (num_tasks == 0) {
    return;
  }
  if (num_tasks == 1 || workers_.empty()) {
    for (size_t i = 0; i < num_tasks; ++i) {
      fn(i);
    }
    return;
  }
  Job job;
  job.fn = &fn;
  job.num_tasks = num_tasks;
  {
    MutexLock lock(&mu_);
    jobs_.push_back(&job);
  }
  work_cv_.SignalAll();
  Drain(&job);
  MutexLock lock(&mu_);
  auto it = std::find(jobs_.begin(), jobs_.end(), &job);
  if (it != jobs_.end()) {
    jobs_.erase(it);
  }
  while (job.done.load(std::memory_order_acquire) != job.num_tasks || job.active_workers != 0) {
    done_cv_.Wait(&mu_);
  }
}

}  // namespace qvec::index
