// The engine's logging: a qvec::Logger (the embedding program's, or one over
// spdlog's default logger) with fmt-style helpers.
#ifndef QVEC_ENGINE_ENGINE_LOG_H_
#define QVEC_ENGINE_ENGINE_LOG_H_

#include <fmt/format.h>

#include <memory>
#include <string_view>
#include <utility>

#include "qvec/logger.h"

namespace qvec::engine {

// `logger`, or a Logger writing to spdlog's default logger when null.
std::shared_ptr<Logger> LoggerOrDefault(std::shared_ptr<Logger> logger);

// Thread-safe when the Logger is (as Logger requires).
class EngineLog {
 public:
  explicit EngineLog(std::shared_ptr<Logger> logger)
      : logger_(LoggerOrDefault(std::move(logger))) {}
  const std::shared_ptr<Logger>& logger() const { return logger_; }

  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) const {
    logger_->Log(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) const {
    logger_->Log(LogLevel::kWarning, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... args) const {
    logger_->Log(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
  }

 private:
  std::shared_ptr<Logger> logger_;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_ENGINE_LOG_H_
