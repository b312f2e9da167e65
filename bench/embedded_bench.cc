#include "bench/embedded_bench.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "qvec/database.h"

namespace qvec::bench {
namespace {

struct EmbeddedOptions {
  size_t n = 1000000;
  size_t dim = 128;
  size_t batch = 1000;
  std::string path = "/tmp/qvec-bench-embedded";
};

EmbeddedOptions g_options;
CLI::App* g_command = nullptr;

size_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Inserts n random vectors in batches; returns the seconds spent in Upsert.
int Insert(const EmbeddedOptions& o) {
  DatabaseOptions options;
  options.background_indexing = false;  // measure the write path alone
  auto db = Database::Open(options, o.path);
  if (!db.ok()) {
    fmt::print(stderr, "open: {}\n", db.status().ToString());
    return 1;
  }
  CollectionConfig config;
  config.dimension = static_cast<uint32_t>(o.dim);
  if (Status s = (*db)->CreateCollection("bench", config); !s.ok()) {
    fmt::print(stderr, "create: {}\n", s.ToString());
    return 1;
  }
  auto collection = (*db)->GetCollection("bench").value();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<Point> points(o.batch);
  for (auto& p : points) p.vector.resize(o.dim);
  double upsert_s = 0;
  for (size_t start = 0; start < o.n; start += o.batch) {
    const size_t count = std::min(o.batch, o.n - start);
    points.resize(count);
    for (size_t i = 0; i < count; ++i) {
      points[i].id = PointId::Num(start + i);
      for (float& x : points[i].vector) x = normal(rng);
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (Status s = collection->Upsert(points); !s.ok()) {
      fmt::print(stderr, "upsert: {}\n", s.ToString());
      return 1;
    }
    upsert_s += Seconds(t0);
    if ((start / o.batch) % 100 == 0) {
      fmt::print(stderr, "\rembedded: inserted {} / {}", start + count, o.n);
    }
  }
  fmt::print(stderr, "\n");
  fmt::print("| bulk insert (WAL on, batches of {}) | {:.0f} vectors/s | {:.2f} s |\n", o.batch,
             o.n / upsert_s, upsert_s);
  return 0;
}

// Opens the database in a fresh process state and measures memory.
int OpenAndMeasure(const EmbeddedOptions& o) {
  const size_t before = ResidentBytes();
  const auto t0 = std::chrono::steady_clock::now();
  DatabaseOptions options;
  options.background_indexing = false;
  auto db = Database::Open(options, o.path);
  if (!db.ok()) {
    fmt::print(stderr, "reopen: {}\n", db.status().ToString());
    return 1;
  }
  const double open_s = Seconds(t0);
  const size_t after = ResidentBytes();
  auto info = (*db)->GetCollection("bench").value()->Info();
  if (!info.ok()) return 1;
  const double per_vector = static_cast<double>(after - before) / info->points_count;
  fmt::print("| open (rebuilds the in-memory index) | {:.2f} s | {} points |\n", open_s,
             info->points_count);
  fmt::print(
      "| resident memory after open | {:.1f} B/vector | limit 1.1 x (dim + 8) = {:.1f} B "
      "plus the id map |\n",
      per_vector, 1.1 * (o.dim + 8));
  return 0;
}

int Run(const EmbeddedOptions& o) {
  std::error_code ec;
  std::filesystem::remove_all(o.path, ec);
  fmt::print("### embedded engine, {} x {} (random vectors, Cosine)\n\n", o.n, o.dim);
  fmt::print("| figure | value | notes |\n|---|--:|---|\n");
  // Each phase in its own process, so that memory freed by the insert phase
  // does not hide the resident size of a freshly opened database.
  for (auto phase : {Insert, OpenAndMeasure}) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      const int rc = phase(o);
      fflush(stdout);
      _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  std::filesystem::remove_all(o.path, ec);
  return 0;
}

}  // namespace

void AddEmbeddedCommand(CLI::App* app) {
  g_command = app->add_subcommand(
      "embedded", "engine bulk insert (WAL on), open time and RAM per vector, via the C++ API");
  g_command->add_option("--n", g_options.n, "vectors inserted")->capture_default_str();
  g_command->add_option("--dim", g_options.dim, "dimension")->capture_default_str();
  g_command->add_option("--batch", g_options.batch, "points per Upsert")->capture_default_str();
  g_command->add_option("--path", g_options.path, "database directory (removed before and after)")
      ->capture_default_str();
}

int RunParsedEmbeddedCommand() {
  if (g_command == nullptr || !g_command->parsed()) return -1;
  return Run(g_options);
}

}  // namespace qvec::bench
