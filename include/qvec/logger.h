// Where the engine's log lines go. An embedding program passes its own
// Logger in DatabaseOptions::logger; by default lines go to stderr through
// the spdlog logger named "qvec" (a program that registers its own spdlog
// logger under that name before opening a database redirects them; stdout is
// never written, so programs that print results there stay clean).
#ifndef QVEC_LOGGER_H_
#define QVEC_LOGGER_H_

#include <cstdint>
#include <string_view>

#include "qvec/export.h"

namespace qvec {

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

/// Thread safety: Log is called from any thread (request threads, background
/// index builds, storage threads) and must be thread-safe.
class QVEC_EXPORT Logger {
 public:
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;
};

}  // namespace qvec

#endif  // QVEC_LOGGER_H_
