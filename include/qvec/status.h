// Status and StatusOr<T>: the error type at every module boundary of qvec.
//
// Codes follow gRPC's canonical codes. A Status is cheap to copy when ok.
// Functions that can fail return Status or StatusOr<T>; both are
// [[nodiscard]]. No exception crosses a module boundary: code that calls
// third-party libraries that throw (FAISS, RocksDB's C++ API, simdjson in
// exception mode) converts the exception into a Status.
#ifndef QVEC_STATUS_H_
#define QVEC_STATUS_H_

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include "qvec/export.h"

namespace qvec {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

/// Returns the canonical upper-case name of `code`, e.g. "INVALID_ARGUMENT".
QVEC_EXPORT std::string_view StatusCodeName(StatusCode code);

/// The result of an operation: ok, or an error code (gRPC's codes) with a
/// message. Cheap to copy (the message is shared); thread-safe as a value.
class [[nodiscard]] QVEC_EXPORT Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string_view message)
      : rep_(code == StatusCode::kOk ? nullptr
                                     : std::make_shared<Rep>(Rep{code, std::string(message)})) {}

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  /// The message; empty when ok.
  const std::string& message() const;
  /// "OK" or "INVALID_ARGUMENT: message".
  std::string ToString() const;

  /// Returns a copy whose message is `prefix + ": " + message()`; ok stays ok.
  Status Annotate(std::string_view prefix) const;

  bool operator==(const Status& other) const {
    return code() == other.code() && message() == other.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status InvalidArgumentError(std::string_view m) {
  return Status(StatusCode::kInvalidArgument, m);
}
inline Status NotFoundError(std::string_view m) { return Status(StatusCode::kNotFound, m); }
inline Status AlreadyExistsError(std::string_view m) {
  return Status(StatusCode::kAlreadyExists, m);
}
inline Status FailedPreconditionError(std::string_view m) {
  return Status(StatusCode::kFailedPrecondition, m);
}
inline Status OutOfRangeError(std::string_view m) { return Status(StatusCode::kOutOfRange, m); }
inline Status InternalError(std::string_view m) { return Status(StatusCode::kInternal, m); }
inline Status UnimplementedError(std::string_view m) {
  return Status(StatusCode::kUnimplemented, m);
}
inline Status UnavailableError(std::string_view m) { return Status(StatusCode::kUnavailable, m); }
inline Status DataLossError(std::string_view m) { return Status(StatusCode::kDataLoss, m); }
inline Status ResourceExhaustedError(std::string_view m) {
  return Status(StatusCode::kResourceExhausted, m);
}
inline Status AbortedError(std::string_view m) { return Status(StatusCode::kAborted, m); }
inline Status PermissionDeniedError(std::string_view m) {
  return Status(StatusCode::kPermissionDenied, m);
}
inline Status UnauthenticatedError(std::string_view m) {
  return Status(StatusCode::kUnauthenticated, m);
}

/// Holds either a value of type T or a non-ok Status.
template <typename T>
class [[nodiscard]] QVEC_EXPORT StatusOr {
 public:
  /// Implicit on purpose, as absl::StatusOr: `return value;` and `return status;` both work.
  StatusOr(const T& value) : value_(value) {}             // NOLINT(google-explicit-constructor)
  StatusOr(T&& value) : value_(std::move(value)) {}       // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "StatusOr built from an ok Status has no value");
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr built from ok Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  /// Precondition: ok().
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

// ---- inline definitions ----

inline std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

inline const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code()));
  out += ": ";
  out += message();
  return out;
}

inline Status Status::Annotate(std::string_view prefix) const {
  if (ok()) return *this;
  std::string m(prefix);
  m += ": ";
  m += message();
  return Status(code(), m);
}

}  // namespace qvec

// Evaluates `expr` (a Status) and returns it from the current function if not ok.
#define QVEC_RETURN_IF_ERROR(expr)                       \
  do {                                                   \
    ::qvec::Status qvec_status_tmp_ = (expr);            \
    if (!qvec_status_tmp_.ok()) return qvec_status_tmp_; \
  } while (0)

#define QVEC_CONCAT_INNER_(a, b) a##b
#define QVEC_CONCAT_(a, b) QVEC_CONCAT_INNER_(a, b)
// Evaluates `rexpr` (a StatusOr<T>); on error returns its status, else moves the value into `lhs`.
#define QVEC_ASSIGN_OR_RETURN(lhs, rexpr) \
  QVEC_ASSIGN_OR_RETURN_IMPL_(QVEC_CONCAT_(qvec_statusor_, __LINE__), lhs, rexpr)
#define QVEC_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#endif  // QVEC_STATUS_H_
