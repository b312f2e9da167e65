#include "engine/engine_log.h"

#include <spdlog/spdlog.h>

namespace qvec::engine {
namespace {

class SpdLogger final : public Logger {
 public:
  void Log(LogLevel level, std::string_view message) override {
    switch (level) {
      case LogLevel::kDebug:
        spdlog::debug("{}", message);
        break;
      case LogLevel::kInfo:
        spdlog::info("{}", message);
        break;
      case LogLevel::kWarning:
        spdlog::warn("{}", message);
        break;
      case LogLevel::kError:
        spdlog::error("{}", message);
        break;
    }
  }
};

}  // namespace

std::shared_ptr<Logger> LoggerOrDefault(std::shared_ptr<Logger> logger) {
  if (logger) return logger;
  static const std::shared_ptr<Logger> kDefault = std::make_shared<SpdLogger>();
  return kDefault;
}

}  // namespace qvec::engine
