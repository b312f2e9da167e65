// A reader-writer lock that prefers writers. glibc's default rwlock (behind
// std::shared_mutex) prefers readers, so a steady stream of searches could
// starve upserts forever; with writer preference a waiting writer blocks new
// readers. Meets the SharedMutex requirements (std::shared_lock works).
#ifndef QVEC_ENGINE_RW_LOCK_H_
#define QVEC_ENGINE_RW_LOCK_H_

#include <pthread.h>

#include <cstdlib>

namespace qvec::engine {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&lock_, &attr) != 0) std::abort();
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  // Taking the lock again in a thread that holds it is a programming error
  // (glibc returns EDEADLK instead of blocking); fail loudly rather than
  // continue without the lock.
  void lock() {
    if (pthread_rwlock_wrlock(&lock_) != 0) std::abort();
  }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() {
    if (pthread_rwlock_rdlock(&lock_) != 0) std::abort();
  }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_RW_LOCK_H_
