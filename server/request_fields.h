// Reading one JSON object of a request so that every field it carries either
// has its effect or is refused (the house rule "never silently wrong").
//
// A handler takes the keys it implements (Take), names the ones qvec accepts
// without effect because they only tune Qdrant internals (AcceptNoEffect), and
// ends with Finish(), which refuses the first key nobody took, naming its
// path: `filter.must[0].match.text: not supported by qvec`. A key whose value
// is JSON null counts as absent (clients send null for unset options), so
// Finish() never refuses it. Because refusal is the default, a field added to
// Qdrant's API later, or one a handler forgot, cannot be silently ignored.
//
// Not thread-safe; borrows the parsed document, which must outlive it.
#ifndef QVEC_SERVER_REQUEST_FIELDS_H_
#define QVEC_SERVER_REQUEST_FIELDS_H_

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "qvec/status.h"

namespace qvec::server {

class RequestFields {
 public:
  // InvalidArgument unless `e` is an object. `path` names it in messages
  // ("" for the request body itself, else e.g. "filter.must[0]").
  [[nodiscard]] static StatusOr<RequestFields> Of(simdjson::dom::element e, std::string path);

  // The value of `key`, which is now handled; false if absent or null.
  bool Take(std::string_view key, simdjson::dom::element* out);
  // True if `key` is present with a non-null value (does not take it).
  bool Has(std::string_view key) const;
  // Takes `key` (if present) as accepted with no effect on results.
  void AcceptNoEffect(std::string_view key);
  // Takes every key: for objects whose keys are names chosen by the user
  // (named vectors, payloads), which the caller reads by iterating.
  void TakeAll();
  // InvalidArgument "<path>: <why>" if `key` is present and not null.
  [[nodiscard]] Status Refuse(std::string_view key, std::string_view why) const;

  // The path of `key` inside this object, for messages and nested readers.
  std::string PathOf(std::string_view key) const;
  const std::string& path() const { return path_; }
  simdjson::dom::element object() const { return object_; }

  // InvalidArgument naming the first present, non-null key nobody took.
  [[nodiscard]] Status Finish() const;

 private:
  struct Field {
    std::string_view key;
    simdjson::dom::element value;
    bool taken = false;
  };
  RequestFields(simdjson::dom::element object, std::string path);

  simdjson::dom::element object_;
  std::string path_;
  std::vector<Field> fields_;
};

// The message Finish() gives for a field qvec does not implement.
std::string NotSupportedMessage(std::string_view path);

}  // namespace qvec::server

#endif  // QVEC_SERVER_REQUEST_FIELDS_H_
