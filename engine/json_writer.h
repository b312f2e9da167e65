// A small append-only JSON writer for responses and stored metadata. Parsing
// is simdjson's job; writing needs only escaping and shortest round-trip
// number formatting (std::to_chars), which this provides without a DOM.
#ifndef QVEC_ENGINE_JSON_WRITER_H_
#define QVEC_ENGINE_JSON_WRITER_H_

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace qvec::engine {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(256); }

  JsonWriter& BeginObject() {
    Sep();
    out_ += '{';
    first_ = true;
    return *this;
  }
  JsonWriter& EndObject() {
    out_ += '}';
    first_ = false;
    return *this;
  }
  JsonWriter& BeginArray() {
    Sep();
    out_ += '[';
    first_ = true;
    return *this;
  }
  JsonWriter& EndArray() {
    out_ += ']';
    first_ = false;
    return *this;
  }
  // Writes `"name":`; the next value call writes the value.
  JsonWriter& Key(std::string_view name) {
    Sep();
    AppendString(name);
    out_ += ':';
    first_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view s) {
    Sep();
    AppendString(s);
    return *this;
  }
  JsonWriter& Bool(bool b) {
    Sep();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& Null() {
    Sep();
    out_ += "null";
    return *this;
  }
  JsonWriter& Uint(uint64_t v) {
    Sep();
    AppendNumber(v);
    return *this;
  }
  JsonWriter& Int(int64_t v) {
    Sep();
    AppendNumber(v);
    return *this;
  }
  // Non-finite numbers have no JSON form; they are written as null.
  JsonWriter& Double(double v) {
    Sep();
    if (!std::isfinite(v)) {
      out_ += "null";
    } else {
      AppendNumber(v);
    }
    return *this;
  }
  JsonWriter& Float(float v) {
    Sep();
    if (!std::isfinite(v)) {
      out_ += "null";
    } else {
      AppendNumber(v);
    }
    return *this;
  }
  // Inserts already-serialized JSON (e.g. a stored payload) as a value.
  JsonWriter& Raw(std::string_view json) {
    Sep();
    out_ += json;
    return *this;
  }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

  // Appends `s` as a quoted JSON string to `out`. Bytes that are not valid UTF-8 (possible in
  // text taken from a request path, e.g. "%FF") become U+FFFD, so the output
  // is always valid JSON.
  static void AppendQuoted(std::string& out, std::string_view s) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const size_t len = Utf8SequenceLength(s, i);
        if (len == 0) {
          out += "\ufffd";
        } else {
          out.append(s.data() + i, len);
          i += len - 1;
        }
        continue;
      }
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  }

 private:
  // Length of the well-formed UTF-8 sequence starting at s[i] (a lead byte
  // >= 0x80), or 0 if it is malformed, overlong, a surrogate or > U+10FFFF.
  static size_t Utf8SequenceLength(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    if (i + len > s.size()) return 0;
    if (b(1) < lo || b(1) > hi) return 0;
    for (size_t k = 2; k < len; ++k) {
      if ((b(k) & 0xC0) != 0x80) return 0;
    }
    return len;
  }
  void Sep() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  void AppendString(std::string_view s) { AppendQuoted(out_, s); }
  template <typename T>
  void AppendNumber(T v) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    // A length GCC can bound (its -Wrestrict misjudges the iterator range).
    const size_t n = static_cast<size_t>(res.ptr - buf);
    out_.append(buf, std::min(n, sizeof(buf)));
  }

  std::string out_;
  bool first_ = true;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_JSON_WRITER_H_
