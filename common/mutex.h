// Mutexes with thread-safety annotations (common/thread_annotations.h):
// Mutex (std::mutex), SharedMutex (a writer-preferring reader-writer lock),
// their scoped holders and a condition variable. libstdc++'s own types carry
// no annotations, so qvec uses these everywhere a lock guards data.
#ifndef QVEC_COMMON_MUTEX_H_
#define QVEC_COMMON_MUTEX_H_

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "common/thread_annotations.h"

namespace qvec {

class QVEC_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() QVEC_ACQUIRE() { mu_.lock(); }
  void Unlock() QVEC_RELEASE() { mu_.unlock(); }
  bool TryLock() QVEC_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // For the analysis only: the caller knows the mutex is held.
  void AssertHeld() const QVEC_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope (or until Unlock()).
class QVEC_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) QVEC_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() QVEC_RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  void Unlock() QVEC_RELEASE() {
    mu_->Unlock();
    held_ = false;
  }
  void Lock() QVEC_ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// A condition variable used with a Mutex the caller holds.
class CondVar {
 public:
  void Wait(Mutex* mu) QVEC_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // False on timeout.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout) QVEC_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline) QVEC_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A reader-writer lock that prefers writers. glibc's default rwlock (behind
// std::shared_mutex) prefers readers, so a steady stream of searches could
// starve writers forever; with writer preference a waiting writer blocks
// new readers. Taking it again in a thread that holds it is a programming
// error (glibc returns EDEADLK instead of blocking): it aborts rather than
// continue without the lock.
class QVEC_CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&lock_, &attr) != 0) std::abort();
    pthread_rwlockattr_destroy(&attr);
  }
  ~SharedMutex() { pthread_rwlock_destroy(&lock_); }
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() QVEC_ACQUIRE() {
    if (pthread_rwlock_wrlock(&lock_) != 0) std::abort();
  }
  void Unlock() QVEC_RELEASE() { pthread_rwlock_unlock(&lock_); }
  void LockShared() QVEC_ACQUIRE_SHARED() {
    if (pthread_rwlock_rdlock(&lock_) != 0) std::abort();
  }
  void UnlockShared() QVEC_RELEASE_SHARED() { pthread_rwlock_unlock(&lock_); }
  // For the analysis only: the caller knows the lock is held (shared or
  // exclusively), or that no writer can change what it reads.
  void AssertReaderHeld() const QVEC_ASSERT_SHARED_CAPABILITY(this) {}
  void AssertHeld() const QVEC_ASSERT_CAPABILITY(this) {}

 private:
  pthread_rwlock_t lock_;
};

// Holds a SharedMutex exclusively for its scope.
class QVEC_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) QVEC_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() QVEC_RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Holds a SharedMutex shared for its scope (or until Unlock()).
class QVEC_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) QVEC_ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() QVEC_RELEASE() {
    if (held_) mu_->UnlockShared();
  }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;
  void Unlock() QVEC_RELEASE() {
    mu_->UnlockShared();
    held_ = false;
  }

 private:
  SharedMutex* const mu_;
  bool held_ = true;
};

}  // namespace qvec

#endif  // QVEC_COMMON_MUTEX_H_
