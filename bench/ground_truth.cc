#include "bench/ground_truth.h"

#include <faiss/IndexFlat.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "bench/bench_util.h"

namespace qvec::bench {

PreparedData Prepare(const Dataset& data) {
  PreparedData p{data.base, data.queries};
  if (data.metric == index::Metric::kCosine) {
    NormalizeRows(p.base, data.dim);
    NormalizeRows(p.queries, data.dim);
  }
  return p;
}

std::vector<std::vector<int32_t>> ExactNeighbors(const Dataset& data, const PreparedData& prepared,
                                                 size_t k, const std::string& cache_dir) {
  k = std::min(k, data.n());
  uint64_t key = HashBytes(data.base.data(), data.base.size() * sizeof(float), data.dim);
  key = HashBytes(data.queries.data(), data.queries.size() * sizeof(float), key);
  key = HashBytes(&k, sizeof(k), key ^ static_cast<uint64_t>(data.metric));
  const std::string path = fmt::format("{}/{}-{:016x}.gt.ivecs", cache_dir, data.name, key);
  std::vector<std::vector<int32_t>> truth;
  {
    std::ifstream in(path, std::ios::binary);
    for (size_t i = 0; in && i < data.nq(); ++i) {
      int32_t width = 0;
      if (!in.read(reinterpret_cast<char*>(&width), 4) || static_cast<size_t>(width) != k) break;
      std::vector<int32_t> ids(k);
      if (!in.read(reinterpret_cast<char*>(ids.data()), static_cast<std::streamsize>(4 * k))) break;
      truth.push_back(std::move(ids));
    }
    if (truth.size() == data.nq()) {
      Progress::Get().Show(fmt::format("{}: ground truth from cache {}", data.name, path));
      return truth;
    }
    truth.clear();
  }
  const size_t n = data.n(), nq = data.nq(), dim = data.dim;
  try {
    SetLibraryThreads(static_cast<int>(HardwareThreads()));
    std::unique_ptr<faiss::IndexFlat> exact;
    if (data.metric == index::Metric::kEuclid) {
      exact = std::make_unique<faiss::IndexFlatL2>(dim);
    } else {
      exact = std::make_unique<faiss::IndexFlatIP>(dim);
    }
    exact->add(static_cast<faiss::Index::idx_t>(n), prepared.base.data());
    std::vector<float> distances(k);
    std::vector<faiss::Index::idx_t> labels;
    const size_t block = 500;
    for (size_t start = 0; start < nq; start += block) {
      Progress::Get().Show(
          fmt::format("{}: exact top-{} ground truth, query {}/{}", data.name, k, start, nq));
      const size_t count = std::min(block, nq - start);
      distances.resize(count * k);
      labels.resize(count * k);
      exact->search(static_cast<faiss::Index::idx_t>(count), prepared.queries.data() + start * dim,
                    static_cast<faiss::Index::idx_t>(k), distances.data(), labels.data());
      for (size_t i = 0; i < count; ++i) {
        truth.emplace_back(labels.begin() + static_cast<ptrdiff_t>(i * k),
                           labels.begin() + static_cast<ptrdiff_t>((i + 1) * k));
      }
    }
  } catch (const std::exception& e) {
    Die(std::string("FAISS ground truth: ") + e.what());
  }
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  std::ofstream out(path + ".tmp", std::ios::binary);
  const int32_t width = static_cast<int32_t>(k);
  for (const auto& ids : truth) {
    out.write(reinterpret_cast<const char*>(&width), 4);
    out.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(4 * k));
  }
  out.close();
  if (out) std::filesystem::rename(path + ".tmp", path, ec);
  return truth;
}

}  // namespace qvec::bench
