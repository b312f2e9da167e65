// IVF throughput / build-time comparison with FAISS. Disabled by default (not
// a timed test); run with
//   OMP_WAIT_POLICY=PASSIVE qvec_index_test --gtest_also_run_disabled_tests
//     --gtest_filter='IvfPerf*'
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "index/ivf_benchmark.h"
#include "tests/index/ivf_test_data.h"

namespace qvec::index {
namespace {

void WarnOmp() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (policy == nullptr || std::string(policy) != "PASSIVE") {
    std::printf("warning: set OMP_WAIT_POLICY=PASSIVE for fair FAISS numbers\n");
  }
}

void RunSynthetic(Metric metric) {
  const size_t n = 200000, nq = 1000, dim = 128;
  std::vector<float> all = testing::OverlappingClusters(n + nq, dim, 1000, 0.8f, 2024);
  auto report = RunIvfBenchmark(all.data(), n, all.data() + n * dim, nq, dim, metric);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("synthetic 200k x 128, %s\n%s\n", metric == Metric::kCosine ? "cosine" : "euclid",
              report->ToString().c_str());
}

TEST(IvfPerfTest, DISABLED_Synthetic200kCosine) {
  WarnOmp();
  RunSynthetic(Metric::kCosine);
}

TEST(IvfPerfTest, DISABLED_Synthetic200kEuclid) {
  WarnOmp();
  RunSynthetic(Metric::kEuclid);
}

// Build time only (train + add), qvec and FAISS interleaved, best of 2.
TEST(IvfPerfTest, DISABLED_BuildTime200k) {
  WarnOmp();
  const size_t n = 200000, dim = 128;
  std::vector<float> all = testing::OverlappingClusters(n, dim, 1000, 0.8f, 2024);
  auto times = RunIvfBuildBenchmark(all.data(), n, dim, Metric::kCosine);
  ASSERT_TRUE(times.ok()) << times.status().ToString();
  std::printf("synthetic 200k x 128, cosine\n%s", times->ToString().c_str());
}

// Reads an IDX3 (gzip) image file into floats, `limit` images at most.
std::vector<float> ReadIdxImages(const std::string& path, size_t limit, size_t* dim) {
  const std::string command = "gzip -dc '" + path + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  unsigned char header[16];
  if (std::fread(header, 1, 16, pipe) != 16) {
    pclose(pipe);
    return {};
  }
  auto be32 = [&](int at) {
    return (uint32_t{header[at]} << 24) | (uint32_t{header[at + 1]} << 16) |
           (uint32_t{header[at + 2]} << 8) | uint32_t{header[at + 3]};
  };
  const size_t n = std::min<size_t>(be32(4), limit);
  *dim = size_t{be32(8)} * be32(12);
  std::vector<unsigned char> bytes(n * *dim);
  const size_t got = std::fread(bytes.data(), 1, bytes.size(), pipe);
  pclose(pipe);
  if (got != bytes.size()) return {};
  return std::vector<float>(bytes.begin(), bytes.end());
}

TEST(IvfPerfTest, DISABLED_FashionMnist) {
  WarnOmp();
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  size_t dim = 0, qdim = 0;
  std::vector<float> base = ReadIdxImages(dir + "/train-images-idx3-ubyte.gz", 60000, &dim);
  std::vector<float> queries = ReadIdxImages(dir + "/t10k-images-idx3-ubyte.gz", 1000, &qdim);
  if (base.empty() || queries.empty() || dim != qdim) GTEST_SKIP() << "Fashion-MNIST not found";
  auto report = RunIvfBenchmark(base.data(), base.size() / dim, queries.data(),
                                queries.size() / dim, dim, Metric::kCosine);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("fashion-mnist 60000 x 784, cosine\n%s\n", report->ToString().c_str());
}

}  // namespace
}  // namespace qvec::index
