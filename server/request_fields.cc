#include "server/request_fields.h"

namespace qvec::server {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string NotSupportedMessage(std::string_view path) {
  return std::string(path) + ": not supported by qvec";
}

RequestFields::RequestFields(element object, std::string path)
    : object_(object), path_(std::move(path)) {
  for (auto field : simdjson::dom::object(object)) {
    fields_.push_back(Field{field.key, field.value, false});
  }
}

StatusOr<RequestFields> RequestFields::Of(element e, std::string path) {
  if (e.type() != element_type::OBJECT) {
    return InvalidArgumentError((path.empty() ? std::string("request body") : path) +
                                ": expected an object");
  }
  return RequestFields(e, std::move(path));
}

bool RequestFields::Take(std::string_view key, element* out) {
  for (Field& f : fields_) {
    if (f.key != key) continue;
    f.taken = true;
    if (f.value.type() == element_type::NULL_VALUE) return false;
    *out = f.value;
    return true;
  }
  return false;
}

bool RequestFields::Has(std::string_view key) const {
  for (const Field& f : fields_) {
    if (f.key == key) return f.value.type() != element_type::NULL_VALUE;
  }
  return false;
}

void RequestFields::AcceptNoEffect(std::string_view key) {
  for (Field& f : fields_) {
    if (f.key == key) f.taken = true;
  }
}

void RequestFields::TakeAll() {
  for (Field& f : fields_) f.taken = true;
}

Status RequestFields::Refuse(std::string_view key, std::string_view why) const {
  if (!Has(key)) return Status::Ok();
  return InvalidArgumentError(PathOf(key) + ": " + std::string(why));
}

std::string RequestFields::PathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

Status RequestFields::Finish() const {
  for (const Field& f : fields_) {
    if (!f.taken && f.value.type() != element_type::NULL_VALUE) {
      return InvalidArgumentError(NotSupportedMessage(PathOf(f.key)));
    }
  }
  return Status::Ok();
}

}  // namespace qvec::server
