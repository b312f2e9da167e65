// The one table that maps qvec::StatusCode to an HTTP status.
#ifndef QVEC_SERVER_STATUS_HTTP_H_
#define QVEC_SERVER_STATUS_HTTP_H_

#include "qvec/status.h"

namespace qvec::server {

inline unsigned HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 507;  // Insufficient Storage: the disk is full (see storage::Store::Write)
    case StatusCode::kOutOfRange:
      return 422;
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
      return 500;
  }
  return 500;
}

}  // namespace qvec::server

#endif  // QVEC_SERVER_STATUS_HTTP_H_
