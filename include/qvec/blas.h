// OpenBLAS kernels for IVF training (k-means runs through FAISS on BLAS).
//
// Debian's OpenBLAS does not recognize some recent CPUs (Sapphire Rapids
// under KVM among them) and falls back to generic SSE3 kernels, which makes
// IVF builds 2.5-4x slower. OpenBLAS reads OPENBLAS_CORETYPE once, when it
// is loaded (before main), so a process can only choose for itself by
// starting again with the variable set. That is the one call to make, first
// thing in main():
//
//   int main(int argc, char** argv) {
//     qvec::UseBestBlasKernels(argv);
//     ...
//
// Programs that never build IVF indexes, or set OPENBLAS_CORETYPE
// themselves, need not call it; nothing else in qvec depends on it.
#ifndef QVEC_BLAS_H_
#define QVEC_BLAS_H_

#include "qvec/export.h"

namespace qvec {

/// The OPENBLAS_CORETYPE that suits this CPU ("SkylakeX", "Haswell"), or
/// nullptr when OpenBLAS's own detection is right. Thread-safe.
QVEC_EXPORT const char* RecommendedBlasCoreType();

/// When OPENBLAS_CORETYPE is unset and RecommendedBlasCoreType() names one:
/// sets it and re-executes the program (/proc/self/exe with `argv`, which must
/// be main's argv, null-terminated); it does not return then. Otherwise, or if
/// re-executing fails, returns and the program goes on unchanged. Call it
/// before starting threads.
QVEC_EXPORT void UseBestBlasKernels(char** argv);

}  // namespace qvec

#endif  // QVEC_BLAS_H_
