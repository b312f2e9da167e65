// QVEC_EXPORT marks qvec's public API. libqvec is compiled with hidden
// symbol visibility, so the shared library exports exactly the classes and
// functions marked here (and nothing of its internals or of the libraries
// it is built on).
#ifndef QVEC_EXPORT_H_
#define QVEC_EXPORT_H_

#if defined(__GNUC__) || defined(__clang__)
#define QVEC_EXPORT [[gnu::visibility("default")]]
#else
#define QVEC_EXPORT
#endif

#endif  // QVEC_EXPORT_H_
