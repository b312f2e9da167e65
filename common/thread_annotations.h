// Clang thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
// They document which mutex guards what, and `-Wthread-safety` checks them
// (the `thread_safety` test compiles the code with it; see CMakeLists.txt).
// Other compilers ignore them.
#ifndef QVEC_COMMON_THREAD_ANNOTATIONS_H_
#define QVEC_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define QVEC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define QVEC_THREAD_ANNOTATION(x)
#endif

#define QVEC_CAPABILITY(x) QVEC_THREAD_ANNOTATION(capability(x))
#define QVEC_SCOPED_CAPABILITY QVEC_THREAD_ANNOTATION(scoped_lockable)
// The member may be read or written only while `x` is held.
#define QVEC_GUARDED_BY(x) QVEC_THREAD_ANNOTATION(guarded_by(x))
// The data the pointer member points to is guarded by `x`.
#define QVEC_PT_GUARDED_BY(x) QVEC_THREAD_ANNOTATION(pt_guarded_by(x))
// Lock order: this mutex is taken before / after the given ones.
#define QVEC_ACQUIRED_BEFORE(...) QVEC_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define QVEC_ACQUIRED_AFTER(...) QVEC_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
// The caller must hold the given mutexes (exclusively / at least shared).
#define QVEC_REQUIRES(...) QVEC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define QVEC_REQUIRES_SHARED(...) QVEC_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The function acquires / releases the given mutexes.
#define QVEC_ACQUIRE(...) QVEC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define QVEC_ACQUIRE_SHARED(...) QVEC_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define QVEC_RELEASE(...) QVEC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define QVEC_RELEASE_SHARED(...) QVEC_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define QVEC_RELEASE_GENERIC(...) QVEC_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define QVEC_TRY_ACQUIRE(...) QVEC_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define QVEC_TRY_ACQUIRE_SHARED(...) \
  QVEC_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))
// The caller must not hold the given mutexes (the function takes them).
#define QVEC_EXCLUDES(...) QVEC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// Tells the analysis the mutex is held here (checked by the invariants the
// comment at the call states, not at run time).
#define QVEC_ASSERT_CAPABILITY(x) QVEC_THREAD_ANNOTATION(assert_capability(x))
#define QVEC_ASSERT_SHARED_CAPABILITY(x) QVEC_THREAD_ANNOTATION(assert_shared_capability(x))
#define QVEC_RETURN_CAPABILITY(x) QVEC_THREAD_ANNOTATION(lock_returned(x))
// Opts a function out of the analysis; every use says why.
#define QVEC_NO_THREAD_SAFETY_ANALYSIS QVEC_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // QVEC_COMMON_THREAD_ANNOTATIONS_H_
