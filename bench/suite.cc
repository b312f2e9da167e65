#include "bench/suite.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/bench_util.h"
#include "bench/datasets.h"
#include "bench/ground_truth.h"
#include "bench/methods.h"
#include "bench/report.h"
#include "index/kernels.h"

namespace qvec::bench {

namespace {

struct SuiteFlags {
  std::string out_dir;
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  size_t queries = 0;  // 0 = the mode's default
  size_t threads = 0;  // 0 = all cores
  std::string methods = "all";
  std::string first_pass = "default";  // --first-pass
  uint64_t seed = 42;
  uint32_t nlist = 0;  // 0 = index::DefaultNlist(n)
  bool no_plot = false;
  // run only
  std::string base_file, queries_file, gt_file, metric = "cosine", synthetic, name;
  size_t limit = 0;
};

SuiteFlags flags;
CLI::App* quick_cmd = nullptr;
CLI::App* full_cmd = nullptr;
CLI::App* run_cmd = nullptr;
std::string command_line;

std::string DefaultOutDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto root = exe.parent_path().parent_path().parent_path();
    if (std::filesystem::exists(root / "bench" / "qvec_bench.cc", ec)) {
      return (root / "bench" / "results").string();
    }
  }
  return "qvec-bench-results";
}

std::string Machine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  const char* blas = std::getenv("OPENBLAS_CORETYPE");
  return fmt::format("{}, {} threads, {} kernels, OpenBLAS core {}", model, HardwareThreads(),
                     index::SimdLevelName(index::ActiveSimdLevel()),
                     blas != nullptr ? blas : "(detected)");
}

double LoadAverage() {
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return load;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  return buf;
}

enum class Level { kQuick, kRun, kFull };

BenchConfig MakeConfig(Level level) {
  BenchConfig c;  // kRun: the defaults of BenchConfig
  c.threads = flags.threads ? flags.threads : HardwareThreads();
  c.quick = level == Level::kQuick;
  c.nlist = flags.nlist;
  // run and full sweep in steps of about 1.5x, so that "the smallest setting
  // reaching recall 0.95" overshoots by less than a doubling would; quick
  // keeps doublings to stay inside its time budget.
  c.nprobes = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  c.efs = {10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640};
  if (level == Level::kFull) {
    c.single_budget_s = 1.0;
    c.batch_budget_s = 1.0;
  } else if (level == Level::kQuick) {
    // Quick (make bench) must stay under 5 minutes on 2 cores: shorter
    // timings, sweeps stop at 0.99, recall@100 on 250 queries, and hnswlib
    // builds with ef_construction 100 instead of 200 (its build is the
    // largest single cost).
    c.single_budget_s = 0.2;
    c.batch_budget_s = 0.15;
    c.stop_recall = 0.99;
    c.recall100_queries = 250;
    c.hnsw_ef_construction = 100;
    c.nprobes = {1, 2, 4, 8, 16, 32, 64, 128};
    c.efs = {10, 20, 40, 80, 160, 320};
  }
  if (flags.first_pass != "default") {
    c.first_passes.clear();
    std::stringstream passes(flags.first_pass);
    std::string pass;
    while (std::getline(passes, pass, ',')) {
      if (pass == "none" || pass.empty()) continue;
      const size_t slash = pass.find('/');
      const std::string kind = pass.substr(0, slash);
      const uint32_t dsub =
          slash == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(pass.substr(slash + 1)));
      if (kind == "sq4") {
        c.first_passes.emplace_back(index::FirstPassKind::kSq4, dsub == 0 ? 1 : dsub);
      } else if (kind == "pq4") {
        c.first_passes.emplace_back(index::FirstPassKind::kPq4, dsub == 0 ? 2 : dsub);
      } else {
        Die("unknown first pass '" + pass + "'; known: none, sq4, pq4/1, pq4/2, pq4/4");
      }
    }
  }
  std::stringstream names(flags.methods);
  std::string name;
  while (std::getline(names, name, ',')) {
    if (name == "all") {
      for (const char* f : kFamilies) c.families.insert(f);
    } else {
      bool known = false;
      for (const char* f : kFamilies) known |= name == f;
      if (!known) {
        std::string all;
        for (const char* f : kFamilies) all += std::string(" ") + f;
        Die("unknown method family '" + name + "'; known: all" + all);
      }
      c.families.insert(name);
    }
  }
  return c;
}

// A dataset made on demand (so only one is in memory), with its expected
// size for the ETA (0 = unknown until loaded).
struct DatasetSpec {
  std::function<Dataset()> make;
  size_t n = 0, dim = 0;
};

// Runs the methods on each dataset and writes the reports.
int RunDatasets(const std::string& mode, const std::vector<DatasetSpec>& specs,
                const BenchConfig& config) {
  const std::string out_dir = flags.out_dir.empty() ? DefaultOutDir() : flags.out_dir;
  std::error_code ec;
  std::filesystem::create_directories(out_dir + "/cache", ec);
  if (ec) Die("cannot create " + out_dir + ": " + ec.message());
  RunInfo info;
  info.mode = mode;
  info.machine = Machine();
  info.started = UtcNow();
  info.command = command_line;
  info.load_average = LoadAverage();
  info.threads = config.threads;
  info.limits = MeasureMachine(config.threads);
  std::fprintf(stderr, "qvec-bench %s: %s, load average %.2f, OMP_WAIT_POLICY=%s, results in %s\n",
               mode.c_str(), info.machine.c_str(), info.load_average,
               std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)",
               out_dir.c_str());
  std::fprintf(stderr, "qvec-bench: %s\n", DescribeLimits(info.limits).c_str());
  Progress& progress = Progress::Get();
  // Loading and ground truth: about 2 units each.
  for (const DatasetSpec& spec : specs) {
    if (spec.n) progress.Plan(PlannedUnits(spec.n, spec.dim, config) + 4);
  }
  std::vector<Row> rows;
  for (const DatasetSpec& spec : specs) {
    const auto& make = spec.make;
    progress.Show("loading data");
    Dataset data = make();
    if (!spec.n) progress.Plan(PlannedUnits(data.n(), data.dim, config) + 4);
    progress.Advance(2, fmt::format("{}: {} x {} loaded", data.name, data.n(), data.dim));
    if (data.n() < 2 || data.nq() < 1) Die(data.name + ": too few vectors");
    PreparedData prepared = Prepare(data);
    std::vector<std::vector<int32_t>> truth;
    if (!data.given_truth.empty()) {
      truth = data.given_truth;
    } else {
      truth = ExactNeighbors(data, prepared, 100, out_dir + "/cache");
    }
    progress.Advance(2, data.name + ": ground truth ready");
    info.datasets.push_back(
        {data.name, data.description, MetricName(data.metric), data.n(), data.nq(), data.dim});
    std::vector<Row> got = RunMethods(data, prepared, truth, config);
    rows.insert(rows.end(), got.begin(), got.end());
  }
  progress.Break();
  const std::string markdown = MarkdownReport(info, rows) + TargetsReport(info, rows);
  std::fwrite(markdown.data(), 1, markdown.size(), stdout);
  std::fflush(stdout);
  const std::string prefix = out_dir + "/" + mode;
  std::ofstream(prefix + ".md") << markdown;
  std::ofstream(prefix + ".json") << JsonReport(info, rows);
  std::vector<std::string> pngs;
  if (!flags.no_plot) pngs = PlotRecallQps(info, rows, prefix);
  std::fprintf(stderr, "wrote %s.md, %s.json", prefix.c_str(), prefix.c_str());
  for (const std::string& png : pngs) std::fprintf(stderr, ", %s", png.c_str());
  std::fprintf(stderr, "\n");
  return 0;
}

bool ParseSize(const std::string& text, size_t* n, size_t* dim) {
  return std::sscanf(text.c_str(), "%zux%zu", n, dim) == 2 && *n > 0 && *dim > 0;
}

int RunSuite(bool full) {
  const BenchConfig config = MakeConfig(full ? Level::kFull : Level::kQuick);
  const size_t nq = flags.queries ? flags.queries : (full ? 10000 : 1000);
  const uint64_t seed = flags.seed;
  std::vector<DatasetSpec> specs;
  specs.push_back({[nq] { return LoadFashionMnist(flags.fashion_dir, nq); }, 60000, 784});
  specs.push_back({[nq, seed] { return MakeSynthetic(200000, nq, 128, seed); }, 200000, 128});
  if (full) {
    specs.push_back({[nq, seed] { return MakeSynthetic(1000000, nq, 128, seed); }, 1000000, 128});
    // High-dimensional, as text embeddings: the same generator (variance
    // spectrum 1/j, overlapping clusters, random rotation) at 768 dimensions.
    specs.push_back({[nq, seed] { return MakeSynthetic(500000, nq, 768, seed); }, 500000, 768});
  }
  return RunDatasets(full ? "full" : "quick", specs, config);
}

int RunUser() {
  const BenchConfig config = MakeConfig(Level::kRun);
  index::Metric metric;
  if (!ParseMetric(flags.metric, &metric)) Die("--metric must be cosine, dot or l2");
  const size_t nq = flags.queries ? flags.queries : 1000;
  std::function<Dataset()> make;
  size_t n_hint = 0, dim_hint = 0;
  std::string mode;
  if (!flags.synthetic.empty()) {
    size_t n = 0, dim = 0;
    if (!ParseSize(flags.synthetic, &n, &dim)) Die("--synthetic wants NxD, e.g. 200000x128");
    n_hint = n;
    dim_hint = dim;
    make = [=] {
      Dataset d = MakeSynthetic(n, nq, dim, flags.seed);
      d.metric = metric;
      if (metric != index::Metric::kCosine) d.name += "-" + MetricName(metric);
      return d;
    };
    mode = "run-" + SafeName(flags.name.empty() ? flags.synthetic : flags.name);
  } else {
    if (flags.base_file.empty() || flags.queries_file.empty()) {
      Die("run needs --base FILE --queries FILE (or --synthetic NxD)");
    }
    make = [=] {
      Dataset d;
      size_t qdim = 0;
      d.base = ReadVectors(flags.base_file, flags.limit ? flags.limit : SIZE_MAX, &d.dim);
      d.queries = ReadVectors(flags.queries_file, nq, &qdim);
      if (qdim != d.dim) Die(fmt::format("base dim {} != query dim {}", d.dim, qdim));
      d.metric = metric;
      d.name = SafeName(flags.name.empty() ? std::filesystem::path(flags.base_file).stem().string()
                                           : flags.name);
      d.description =
          fmt::format("{} (base) and {} (queries)", flags.base_file, flags.queries_file);
      if (!flags.gt_file.empty()) {
        if (flags.limit) {
          std::fprintf(stderr, "qvec-bench: --limit truncates the base; ignoring --gt\n");
        } else {
          d.given_truth = ReadNeighborIds(flags.gt_file, d.nq());
          if (d.given_truth.size() != d.nq()) Die("--gt has fewer rows than there are queries");
          d.description += fmt::format(", ground truth {}", flags.gt_file);
        }
      }
      return d;
    };
    mode = "run-" + SafeName(flags.name.empty()
                                 ? std::filesystem::path(flags.base_file).stem().string()
                                 : flags.name);
  }
  return RunDatasets(mode, {{make, n_hint, dim_hint}}, config);
}

void AddCommonFlags(CLI::App* cmd) {
  cmd->add_option("--out", flags.out_dir,
                  "directory for results (default: bench/results of the source tree)");
  cmd->add_option("--queries-count", flags.queries,
                  "queries per dataset (default: 1000 quick/run, 10000 full)");
  cmd->add_option("--threads", flags.threads, "threads for every library (0 = all cores)");
  cmd->add_option("--methods", flags.methods,
                  "comma-separated families: all, faiss-flat, qvec-flat-f32, qvec-flat, "
                  "qvec-ivf, faiss-ivfflat, faiss-ivfsq8, hnswlib");
  cmd->add_option("--seed", flags.seed, "seed of the synthetic datasets");
  cmd->add_option("--first-pass", flags.first_pass,
                  "qvec IVF 4-bit first-pass variants, comma-separated: none, sq4, pq4/1, pq4/2, "
                  "pq4/4 (default: sq4,pq4/1,pq4/2)");
  cmd->add_option("--nlist", flags.nlist,
                  "IVF lists for qvec and FAISS (default: qvec's DefaultNlist of the size)")
      ->check(CLI::Range(1u, 65536u));
  cmd->add_flag("--no-plot", flags.no_plot, "skip the gnuplot PNGs");
}

}  // namespace

void AddSuiteCommands(CLI::App* app) {
  quick_cmd = app->add_subcommand(
      "quick", "recall/QPS suite: Fashion-MNIST + synthetic 200k x 128 (make bench, < 5 min)");
  full_cmd = app->add_subcommand("full", "quick's datasets with 10k queries + synthetic 1M x 128 and 500k x 768");
  run_cmd = app->add_subcommand("run", "the suite on your own files or a synthetic NxD set");
  for (CLI::App* cmd : {quick_cmd, full_cmd}) {
    AddCommonFlags(cmd);
    cmd->add_option("--fashion-dir", flags.fashion_dir, "directory of the Fashion-MNIST .gz files");
  }
  AddCommonFlags(run_cmd);
  run_cmd->add_option("--base", flags.base_file, "base vectors: .fvecs, .bvecs or .npy");
  run_cmd->add_option("--queries", flags.queries_file, "query vectors: .fvecs, .bvecs or .npy");
  run_cmd->add_option("--gt", flags.gt_file,
                      "ground-truth neighbor ids (.ivecs or int .npy); default: computed");
  run_cmd->add_option("--metric", flags.metric, "cosine, dot or l2")
      ->check(CLI::IsMember({"cosine", "dot", "l2"}));
  run_cmd->add_option("--limit", flags.limit, "use only the first N base vectors");
  run_cmd->add_option("--synthetic", flags.synthetic,
                      "instead of files: a seeded synthetic set NxD, e.g. 500000x96");
  run_cmd->add_option("--name", flags.name, "dataset name in the reports");
}

int RunParsedSuiteCommand() {
  if (quick_cmd == nullptr) return -1;
  std::ifstream cmdline("/proc/self/cmdline");
  std::string arg;
  while (std::getline(cmdline, arg, '\0')) command_line += (command_line.empty() ? "" : " ") + arg;
  if (quick_cmd->parsed()) return RunSuite(false);
  if (full_cmd->parsed()) return RunSuite(true);
  if (run_cmd->parsed()) return RunUser();
  return -1;
}

}  // namespace qvec::bench
