// RFC 3339 date-times as Qdrant accepts them in payloads and datetime
// ranges, as microseconds since the Unix epoch (UTC). Header-only.
//
// Accepted: "2023-02-08", "2023-02-08T10:49", "2023-02-08T10:49:00",
// "2023-02-08 10:49:00" (a space for the T), fractional seconds (up to
// nanoseconds; beyond microseconds truncated), and a zone "Z", "+01:00",
// "-0530" (none = UTC).
#ifndef QVEC_COMMON_DATETIME_H_
#define QVEC_COMMON_DATETIME_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace qvec::datetime {

namespace internal {

inline bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
// (Howard Hinnant's days_from_civil).
inline int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

inline bool LeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace internal

// Microseconds since 1970-01-01T00:00:00Z, or nullopt if `s` is not a
// date-time in one of the accepted forms (or names an impossible date).
inline std::optional<int64_t> ParseMicros(std::string_view s) {
  using internal::Digits;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!Digits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &month) ||
      s[7] != '-' || !Digits(s, 8, 2, &day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1) return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int month_days = kDays[month - 1] + (month == 2 && internal::LeapYear(year) ? 1 : 0);
  if (day > month_days) return std::nullopt;
  size_t pos = 10;
  int64_t micros = 0;
  int64_t offset_seconds = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
    if (!Digits(s, pos + 1, 2, &hour) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &minute)) {
      return std::nullopt;
    }
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, &second)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        size_t digits = 0;
        int64_t fraction = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (digits < 6) fraction = fraction * 10 + (s[pos] - '0');
          ++digits;
          ++pos;
        }
        if (digits == 0 || digits > 9) return std::nullopt;
        for (size_t d = digits; d < 6; ++d) fraction *= 10;
        micros = fraction;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;  // 60: a leap second
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        const int sign = s[pos] == '-' ? -1 : 1;
        int oh, om;
        if (!Digits(s, pos + 1, 2, &oh)) return std::nullopt;
        size_t mpos = pos + 3;
        if (mpos < s.size() && s[mpos] == ':') ++mpos;
        if (!Digits(s, mpos, 2, &om) || oh > 23 || om > 59) return std::nullopt;
        offset_seconds = sign * (oh * 3600 + om * 60);
        pos = mpos + 2;
      } else {
        return std::nullopt;
      }
    }
    if (pos != s.size()) return std::nullopt;
  }
  const int64_t days = internal::DaysFromCivil(year, static_cast<unsigned>(month),
                                               static_cast<unsigned>(day));
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return seconds * 1000000 + micros;
}

}  // namespace qvec::datetime

#endif  // QVEC_COMMON_DATETIME_H_
