#include "engine/build_pool.h"

#include <utility>

namespace qvec::engine {

BuildPool::BuildPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

BuildPool::~BuildPool() { Shutdown(); }

bool BuildPool::Submit(std::function<void()> task) {
  {
    MutexLock lock(&mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.Signal();
  return true;
}

void BuildPool::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    std::deque<std::function<void()>> dropped;
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    cv_.SignalAll();
    for (auto& t : threads_) t.join();
    // `dropped` releases what the tasks held (collections) outside the lock.
  });
}

void BuildPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace qvec::engine
