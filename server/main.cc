// The qvec executable: `qvec serve` opens the database and serves Qdrant's
// REST API over HTTP until SIGINT or SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <thread>
#include <utility>

#include "qvec/blas.h"
#include "qvec/database.h"
#include "qvec/version.h"
#include "server/http_server.h"
#include "server/router.h"
#include "server/yaml_config.h"

namespace {

struct ServeFlags {
  std::string data_dir = "./data";
  std::string snapshots_dir;
  std::string host = "127.0.0.1";
  int port = 6333;
  std::string api_key;
  std::string read_only_api_key;
  size_t max_body_mib = 32;
  size_t max_response_mib = 32;
  size_t min_free_disk_mib = 64;
  size_t worker_threads = 0;
  bool sync_writes = false;
  std::string log_level = "info";
  std::vector<std::string> cors_origins;
  bool access_log = false;
};

// Qdrant's environment names for the settings that mean the same
// (QDRANT__SERVICE__API_KEY, ...), used when qvec's own flag or variable
// left the setting unset.
void ApplyQdrantEnvironment(const CLI::App* serve, ServeFlags* flags) {
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  auto unset = [&](const char* flag) { return serve->get_option(flag)->count() == 0; };
  if (unset("--host")) {
    if (auto v = env("QDRANT__SERVICE__HOST")) flags->host = *v;
  }
  if (unset("--port")) {
    if (auto v = env("QDRANT__SERVICE__HTTP_PORT")) {
      char* end = nullptr;
      const long port = std::strtol(v->c_str(), &end, 10);
      if (end != nullptr && *end == '\0' && port >= 0 && port <= 65535) {
        flags->port = static_cast<int>(port);
      } else {
        spdlog::warn("QDRANT__SERVICE__HTTP_PORT={} is not a port; ignoring it", *v);
      }
    }
  }
  if (unset("--data")) {
    if (auto v = env("QDRANT__STORAGE__STORAGE_PATH")) flags->data_dir = *v;
  }
  if (unset("--snapshots-dir")) {
    if (auto v = env("QDRANT__STORAGE__SNAPSHOTS_PATH")) flags->snapshots_dir = *v;
  }
  if (flags->api_key.empty()) {
    if (auto v = env("QDRANT__SERVICE__API_KEY")) flags->api_key = *v;
  }
  if (flags->read_only_api_key.empty()) {
    if (auto v = env("QDRANT__SERVICE__READ_ONLY_API_KEY")) flags->read_only_api_key = *v;
  }
  if (flags->cors_origins.empty()) {
    if (auto v = env("QDRANT__SERVICE__ENABLE_CORS"); v && (*v == "true" || *v == "1")) {
      flags->cors_origins = {"*"};
    }
  }
}

int Serve(const ServeFlags& flags) {
  spdlog::set_level(spdlog::level::from_str(flags.log_level));

  // Catch the signals before anything else starts, so none is lost.
  boost::asio::io_context signal_ioc;
  boost::asio::signal_set signals(signal_ioc, SIGINT, SIGTERM);

  qvec::server::RouterOptions router_options;
  router_options.data_dir = flags.data_dir;
  router_options.snapshots_dir = flags.snapshots_dir;
  router_options.max_response_bytes = flags.max_response_mib << 20;
  router_options.database.min_free_disk_bytes = uint64_t{flags.min_free_disk_mib} << 20;
  router_options.database.sync_writes = flags.sync_writes;
  auto router = qvec::server::MakeRouter(router_options);
  if (!router.ok()) {
    spdlog::error("cannot open the database in {}: {}", flags.data_dir, router.status().ToString());
    return 1;
  }

  qvec::server::ServerOptions options;
  options.host = flags.host;
  options.port = static_cast<uint16_t>(flags.port);
  options.api_key = flags.api_key;
  options.read_only_api_key = flags.read_only_api_key;
  options.max_body_bytes = flags.max_body_mib << 20;
  options.worker_threads = flags.worker_threads;
  options.cors_origins = flags.cors_origins;
  options.access_log = flags.access_log;

  int exit_code = 0;
  {
    qvec::server::HttpServer server(options, std::move(router).value());
    if (auto status = server.Start(); !status.ok()) {
      spdlog::error("cannot start the HTTP server: {}", status.ToString());
      return 1;
    }
    spdlog::info("qvec listening on http://{}:{} (data: {})", flags.host, server.port(),
                 flags.data_dir);

    int received = 0;
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (!ec) received = signo;
    });
    signal_ioc.run();
    spdlog::info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");

    // A second signal during the graceful shutdown forces the exit.
    signals.async_wait([](const boost::system::error_code& ec, int) {
      if (ec) return;
      std::fputs("qvec: second signal, exiting immediately\n", stderr);
      std::_Exit(1);
    });
    signal_ioc.restart();
    std::thread signal_thread([&] { signal_ioc.run(); });
    server.Stop();
    signals.cancel();
    signal_ioc.stop();
    signal_thread.join();
  }
  // The router (and with it the database) is closed here, after the server
  // has released it.
  spdlog::info("qvec stopped");
  return exit_code;
}

// The value of --config on the command line ("" when absent).
std::string ConfigFileArgument(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) return argv[i + 1];
    if (a.rfind("--config=", 0) == 0) return std::string(a.substr(9));
  }
  return "";
}

// CLI11's reader of config files for YAML (server/yaml_config.h).
class YamlFormatter : public CLI::Config {
 public:
  explicit YamlFormatter(std::vector<std::string>* ignored) : ignored_(ignored) {}
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return ""; }
  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    auto entries = qvec::server::ReadYamlConfig(in, ignored_);
    if (!entries.ok()) throw CLI::ConfigError(std::string(entries.status().message()));
    std::vector<CLI::ConfigItem> items;
    for (qvec::server::ConfigEntry& e : *entries) {
      CLI::ConfigItem item;
      item.parents = std::move(e.parents);
      item.name = std::move(e.name);
      item.inputs = std::move(e.values);
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  std::vector<std::string>* ignored_;
};

}  // namespace

// Every HTTP connection is a file descriptor: raise the soft limit to the
// hard one so that a burst of connections meets the server's own connection
// cap (and its eviction of idle ones) before the kernel's limit.
void RaiseOpenFileLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char** argv) {
  qvec::UseBestBlasKernels(argv);  // IVF builds: see qvec/blas.h
  RaiseOpenFileLimit();
  spdlog::set_default_logger(spdlog::stderr_color_mt("qvec"));

  CLI::App app{"qvec: a vector database that speaks Qdrant's REST API.", "qvec"};
  app.set_version_flag("--version", "qvec " QVEC_VERSION_STRING, "Print the version and exit");
  app.require_subcommand(1);
  app.fallthrough();  // `qvec serve --config FILE` as well as `qvec --config FILE serve`
  // A setting in a config file that is no flag is an error, not ignored
  // (set before the subcommands, which inherit it).
  app.allow_config_extras(CLI::config_extras_mode::error);

  ServeFlags flags;
  CLI::App* serve =
      app.add_subcommand("serve", "Open the database and serve the REST API over HTTP");
  serve->add_option("--data", flags.data_dir, "Directory holding the database")
      ->envname("QVEC_DATA")
      ->capture_default_str();
  serve
      ->add_option("--snapshots-dir", flags.snapshots_dir,
                   "Directory for collection snapshots (empty = \"<data>-snapshots\" next to the "
                   "data directory)")
      ->envname("QVEC_SNAPSHOTS_DIR")
      ->capture_default_str();
  serve->add_option("--host", flags.host, "Address to listen on (0.0.0.0 for all interfaces)")
      ->envname("QVEC_HOST")
      ->capture_default_str();
  serve->add_option("--port", flags.port, "TCP port to listen on (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->envname("QVEC_PORT")
      ->capture_default_str();
  serve
      ->add_option("--api-key", flags.api_key,
                   "API key required for all requests (as 'api-key: KEY' or 'Authorization: "
                   "Bearer KEY'); empty = no authentication")
      ->envname("QVEC_API_KEY")
      ->capture_default_str();
  serve
      ->add_option("--read-only-api-key", flags.read_only_api_key,
                   "API key granting read-only access; empty = none")
      ->envname("QVEC_READ_ONLY_API_KEY")
      ->capture_default_str();
  serve
      ->add_option("--max-body-mib", flags.max_body_mib,
                   "Largest accepted request body, in MiB (larger requests get 413)")
      ->check(CLI::Range(size_t{1}, size_t{4096}))
      ->envname("QVEC_MAX_BODY_MIB")
      ->capture_default_str();
  serve
      ->add_option("--max-response-mib", flags.max_response_mib,
                   "Largest answer, in MiB: searches, scrolls and retrieves that would answer more "
                   "are refused with 422 (ask for fewer points or without vectors/payloads)")
      ->check(CLI::Range(size_t{1}, size_t{4096}))
      ->envname("QVEC_MAX_RESPONSE_MIB")
      ->capture_default_str();
  serve
      ->add_option("--min-free-disk-mib", flags.min_free_disk_mib,
                   "Disk space kept free, in MiB: writes that would leave less are refused with "
                   "507 until space is freed (0 = no reserve)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20))
      ->envname("QVEC_MIN_FREE_DISK_MIB")
      ->capture_default_str();
  serve
      ->add_option("--worker-threads", flags.worker_threads,
                   "Threads executing requests (0 = one per CPU core)")
      ->check(CLI::Range(size_t{0}, size_t{4096}))
      ->envname("QVEC_WORKER_THREADS")
      ->capture_default_str();
  serve
      ->add_flag("--sync-writes", flags.sync_writes,
                 "fsync the write-ahead log before acknowledging a write, so that it survives a "
                 "power cut, not only a crash of the process (concurrent writes share fsyncs)")
      ->envname("QVEC_SYNC_WRITES");
  serve
      ->add_option("--log-level", flags.log_level,
                   "Log level: trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->envname("QVEC_LOG_LEVEL")
      ->capture_default_str();

  serve
      ->add_option("--cors-origin", flags.cors_origins,
                   "Origin allowed to call the API from a browser (CORS), repeatable or comma "
                   "separated; '*' = any; none = CORS off (QDRANT__SERVICE__ENABLE_CORS=true "
                   "means '*')")
      ->delimiter(',')
      ->envname("QVEC_CORS_ORIGIN");
  serve
      ->add_flag("--access-log", flags.access_log,
                 "Log one line per request (method, target, status, bytes, ms, collection) at "
                 "info level; without it the lines are at debug level")
      ->envname("QVEC_ACCESS_LOG");

  // Every flag may come from a file too (YAML, in qvec's shape or Qdrant's
  // config.yaml shape: see server/yaml_config.h; or TOML/INI: `port = 6334`,
  // `data = "/var/lib/qvec"`, `cors-origin = ["*"]`); the command line and
  // the environment win over it. The file's format follows its name.
  app.set_config("--config", "",
                 "Read flags from a file: YAML (.yaml/.yml; a `serve:` mapping with one key per "
                 "flag, or Qdrant's config.yaml keys service.host/http_port/api_key/"
                 "read_only_api_key/enable_cors/max_request_size_mb, storage.storage_path/"
                 "snapshots_path, log_level) or TOML/INI (a [serve] section)");
  std::vector<std::string> ignored_settings;
  if (qvec::server::IsYamlFileName(ConfigFileArgument(argc, argv))) {
    app.config_formatter(std::make_shared<YamlFormatter>(&ignored_settings));
  }

  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) {
    for (const std::string& key : ignored_settings) {
      spdlog::warn("config file: Qdrant setting '{}' has no effect in qvec (ignored)", key);
    }
    ApplyQdrantEnvironment(serve, &flags);
    return Serve(flags);
  }
  return 0;
}
