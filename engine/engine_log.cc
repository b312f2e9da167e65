#include "engine/engine_log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace qvec::engine {
namespace {

// spdlog's own default logger writes to stdout; the engine's lines go to
// stderr, through the logger named "qvec" (the program's, if it registered
// one).
class SpdLogger final : public Logger {
 public:
  SpdLogger() {
    logger_ = spdlog::get("qvec");
    if (!logger_) {
      try {
        logger_ = spdlog::stderr_color_mt("qvec");
      } catch (const spdlog::spdlog_ex&) {  // registered meanwhile by another thread
        logger_ = spdlog::get("qvec");
      }
    }
  }
  void Log(LogLevel level, std::string_view message) override {
    if (!logger_) return;
    switch (level) {
      case LogLevel::kDebug:
        logger_->debug("{}", message);
        break;
      case LogLevel::kInfo:
        logger_->info("{}", message);
        break;
      case LogLevel::kWarning:
        logger_->warn("{}", message);
        break;
      case LogLevel::kError:
        logger_->error("{}", message);
        break;
    }
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace

std::shared_ptr<Logger> LoggerOrDefault(std::shared_ptr<Logger> logger) {
  if (logger) return logger;
  static const std::shared_ptr<Logger> kDefault = std::make_shared<SpdLogger>();
  return kDefault;
}

}  // namespace qvec::engine
