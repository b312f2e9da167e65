#include "bench/datasets.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "bench/bench_util.h"
#include "index/thread_pool.h"

// Fortran BLAS (OpenBLAS): used to rotate synthetic data.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace qvec::bench {

using index::Metric;

std::string MetricName(Metric metric) {
  switch (metric) {
    case Metric::kCosine:
      return "cosine";
    case Metric::kDot:
      return "dot";
    case Metric::kEuclid:
      return "l2";
    case Metric::kManhattan:  // no baseline here has an L1 IVF or graph: not parsed
      return "l1";
  }
  return "?";
}

bool ParseMetric(const std::string& text, Metric* metric) {
  if (text == "cosine") {
    *metric = Metric::kCosine;
  } else if (text == "dot" || text == "ip") {
    *metric = Metric::kDot;
  } else if (text == "l2" || text == "euclid") {
    *metric = Metric::kEuclid;
  } else {
    return false;
  }
  return true;
}

std::string SafeName(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
    out += ok ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '-';
  }
  return out.empty() ? "data" : out;
}

namespace {

// Reads an IDX3 (gzip) image file into floats, `limit` images at most.
std::vector<float> ReadIdxImages(const std::string& path, size_t limit, size_t* dim) {
  const std::string command = "gzip -dc '" + path + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Die("cannot run " + command);
  unsigned char header[16];
  if (std::fread(header, 1, 16, pipe) != 16) {
    pclose(pipe);
    Die("cannot read " + path +
        " (Debian package dataset-fashion-mnist; `make bench` installs it)");
  }
  auto be32 = [&](int at) {
    return (uint32_t{header[at]} << 24) | (uint32_t{header[at + 1]} << 16) |
           (uint32_t{header[at + 2]} << 8) | uint32_t{header[at + 3]};
  };
  if (be32(0) != 0x803) Die("not an IDX3 ubyte file: " + path);
  const size_t n = std::min<size_t>(be32(4), limit);
  *dim = size_t{be32(8)} * be32(12);
  std::vector<unsigned char> bytes(n * *dim);
  if (std::fread(bytes.data(), 1, bytes.size(), pipe) != bytes.size()) Die("short IDX body");
  pclose(pipe);
  return std::vector<float>(bytes.begin(), bytes.end());
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct NpyHeader {
  std::string descr;  // "<f4", "|u1", "<i4", "<i8"
  size_t rows = 0, cols = 0;
};

// Parses the header of a .npy file and leaves `in` at the data.
NpyHeader ReadNpyHeader(std::ifstream& in, const std::string& path) {
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    Die("not a .npy file: " + path);
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char len[2];
    in.read(reinterpret_cast<char*>(len), 2);
    header_len = len[0] | (len[1] << 8);
  } else {
    unsigned char len[4];
    in.read(reinterpret_cast<char*>(len), 4);
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t{len[3]} << 24);
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) Die("short .npy header: " + path);
  NpyHeader h;
  auto value_of = [&](const std::string& key) {
    const size_t at = header.find("'" + key + "'");
    if (at == std::string::npos) Die(".npy header without " + key + ": " + path);
    const size_t colon = header.find(':', at);
    return header.substr(colon + 1);
  };
  std::string descr = value_of("descr");
  const size_t q1 = descr.find('\''), q2 = descr.find('\'', q1 + 1);
  h.descr = descr.substr(q1 + 1, q2 - q1 - 1);
  if (value_of("fortran_order").find("True") < value_of("fortran_order").find(',')) {
    Die(".npy in Fortran order is not supported (save with C order): " + path);
  }
  std::string shape = value_of("shape");
  shape = shape.substr(shape.find('(') + 1, shape.find(')') - shape.find('(') - 1);
  std::vector<size_t> dims;
  size_t pos = 0;
  while (pos < shape.size()) {
    while (pos < shape.size() && !std::isdigit(static_cast<unsigned char>(shape[pos]))) ++pos;
    if (pos >= shape.size()) break;
    size_t end = pos;
    while (end < shape.size() && std::isdigit(static_cast<unsigned char>(shape[end]))) ++end;
    dims.push_back(std::stoull(shape.substr(pos, end - pos)));
    pos = end;
  }
  if (dims.size() != 2) Die(".npy must be 2-D (rows, dim): " + path);
  h.rows = dims[0];
  h.cols = dims[1];
  return h;
}

}  // namespace

Dataset LoadFashionMnist(const std::string& dir, size_t max_queries) {
  Dataset d;
  d.name = "fashion-mnist";
  d.metric = Metric::kCosine;
  size_t qdim = 0;
  d.base = ReadIdxImages(dir + "/train-images-idx3-ubyte.gz", SIZE_MAX, &d.dim);
  d.queries = ReadIdxImages(dir + "/t10k-images-idx3-ubyte.gz", max_queries, &qdim);
  if (d.dim != qdim) Die("Fashion-MNIST base and query dims differ");
  d.description = fmt::format("Fashion-MNIST train images as base, t10k as queries ({})", dir);
  return d;
}

Dataset MakeSynthetic(size_t n, size_t nq, size_t dim, uint64_t seed) {
  Dataset d;
  d.dim = dim;
  d.metric = Metric::kCosine;
  auto short_count = [](size_t v) {
    if (v % 1000000 == 0) return fmt::format("{}m", v / 1000000);
    if (v % 1000 == 0) return fmt::format("{}k", v / 1000);
    return fmt::format("{}", v);
  };
  d.name = fmt::format("synthetic-{}-{}", short_count(n), dim);
  // Spectrum: per-dimension standard deviation (j+1)^-decay (variance ~ 1/j,
  // as the PCA spectra of text/image embeddings), in both the cluster
  // centers and the within-cluster spread. Spread ~ center spread, so the
  // clusters overlap: neighbors often sit in other clusters, which is what
  // makes IVF need several probes on real data.
  const size_t clusters = std::clamp<size_t>(n / 250, 16, 4096);
  // spread 1.2 puts FAISS IVFFlat (nlist 2048, 200k) at recall@10 ~0.45 for
  // nprobe 1 and ~0.95 near nprobe 16-32, as on public embedding sets;
  // 0.9 made nprobe 4 enough, 1.4 needed ~80.
  const float center_scale = 1.0f, spread_scale = 1.2f, mean_scale = 0.6f, decay = 0.5f;
  d.description = fmt::format(
      "seeded synthetic (seed {}): {} overlapping Gaussian clusters, variance spectrum 1/j, "
      "random rotation, shared mean offset",
      seed, clusters);
  std::vector<float> sigma(dim);
  for (size_t j = 0; j < dim; ++j) sigma[j] = std::pow(static_cast<float>(j + 1), -decay);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> mean(dim), centers(clusters * dim);
  for (size_t j = 0; j < dim; ++j) mean[j] = mean_scale * sigma[j] * normal(rng);
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t j = 0; j < dim; ++j) centers[c * dim + j] = center_scale * sigma[j] * normal(rng);
  }
  // Unequal cluster sizes (log-normal weights).
  std::vector<double> weights(clusters);
  for (double& w : weights) w = std::exp(0.7 * normal(rng));
  // Random rotation: Gram-Schmidt on a Gaussian matrix.
  std::vector<float> rotation(dim * dim);
  for (float& v : rotation) v = normal(rng);
  for (size_t i = 0; i < dim; ++i) {
    float* row = rotation.data() + i * dim;
    for (size_t p = 0; p < i; ++p) {
      const float* prev = rotation.data() + p * dim;
      double dot = 0;
      for (size_t j = 0; j < dim; ++j) dot += double{row[j]} * prev[j];
      for (size_t j = 0; j < dim; ++j) row[j] -= static_cast<float>(dot) * prev[j];
    }
    double norm = 0;
    for (size_t j = 0; j < dim; ++j) norm += double{row[j]} * row[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (size_t j = 0; j < dim; ++j) row[j] *= inv;
  }
  // Rows in chunks with their own seeds: deterministic for any thread count.
  const size_t total = n + nq, chunk = 4096;
  std::vector<float> latent(total * dim);
  index::ThreadPool pool(0);
  pool.ParallelFor((total + chunk - 1) / chunk, [&](size_t t) {
    std::mt19937_64 gen(seed * 1000003 + t);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
    for (size_t i = t * chunk; i < std::min(total, (t + 1) * chunk); ++i) {
      const float* center = centers.data() + pick(gen) * dim;
      float* x = latent.data() + i * dim;
      for (size_t j = 0; j < dim; ++j)
        x[j] = mean[j] + center[j] + spread_scale * sigma[j] * g(gen);
    }
  });
  // rotated = latent * rotation (row-major), as one SGEMM.
  std::vector<float> rotated(total * dim);
  const int m = static_cast<int>(dim), cols = static_cast<int>(total), k = static_cast<int>(dim);
  const float alpha = 1.0f, beta = 0.0f;
  sgemm_("N", "N", &m, &cols, &k, &alpha, rotation.data(), &m, latent.data(), &k, &beta,
         rotated.data(), &m);
  d.base.assign(rotated.begin(), rotated.begin() + n * dim);
  d.queries.assign(rotated.begin() + n * dim, rotated.end());
  return d;
}

std::vector<float> ReadVectors(const std::string& path, size_t limit, size_t* dim) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot open " + path);
  std::vector<float> out;
  if (EndsWith(path, ".npy")) {
    const NpyHeader h = ReadNpyHeader(in, path);
    const size_t rows = std::min(h.rows, limit);
    *dim = h.cols;
    out.resize(rows * h.cols);
    if (h.descr == "<f4" || h.descr == "=f4") {
      if (!in.read(reinterpret_cast<char*>(out.data()),
                   static_cast<std::streamsize>(out.size() * 4))) {
        Die("short .npy data: " + path);
      }
    } else if (h.descr == "|u1" || h.descr == "<u1") {
      std::vector<uint8_t> bytes(out.size());
      if (!in.read(reinterpret_cast<char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()))) {
        Die("short .npy data: " + path);
      }
      std::copy(bytes.begin(), bytes.end(), out.begin());
    } else {
      Die(".npy dtype " + h.descr + " not supported (float32 or uint8): " + path);
    }
    return out;
  }
  const bool bytes = EndsWith(path, ".bvecs");
  if (!bytes && !EndsWith(path, ".fvecs"))
    Die("unknown vector file type (.fvecs/.bvecs/.npy): " + path);
  *dim = 0;
  std::vector<uint8_t> row_bytes;
  for (size_t row = 0; row < limit; ++row) {
    int32_t d = 0;
    if (!in.read(reinterpret_cast<char*>(&d), 4)) break;
    if (d <= 0 || d > 65536 || (*dim != 0 && static_cast<size_t>(d) != *dim)) {
      Die(fmt::format("{}: bad dimension {} in row {}", path, d, row));
    }
    *dim = static_cast<size_t>(d);
    const size_t at = out.size();
    out.resize(at + *dim);
    if (bytes) {
      row_bytes.resize(*dim);
      if (!in.read(reinterpret_cast<char*>(row_bytes.data()), d)) Die("truncated " + path);
      std::copy(row_bytes.begin(), row_bytes.end(), out.begin() + static_cast<ptrdiff_t>(at));
    } else if (!in.read(reinterpret_cast<char*>(out.data() + at),
                        4 * static_cast<std::streamsize>(d))) {
      Die("truncated " + path);
    }
  }
  if (*dim == 0) Die("no vectors in " + path);
  return out;
}

std::vector<std::vector<int32_t>> ReadNeighborIds(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot open " + path);
  std::vector<std::vector<int32_t>> out;
  if (EndsWith(path, ".npy")) {
    const NpyHeader h = ReadNpyHeader(in, path);
    const size_t width = h.descr == "<i8" ? 8 : h.descr == "<i4" ? 4 : 0;
    if (width == 0) Die(".npy ground truth must be int32 or int64: " + path);
    std::vector<char> row(h.cols * width);
    for (size_t r = 0; r < std::min(h.rows, limit); ++r) {
      if (!in.read(row.data(), static_cast<std::streamsize>(row.size()))) Die("truncated " + path);
      std::vector<int32_t> ids(h.cols);
      for (size_t j = 0; j < h.cols; ++j) {
        int64_t v = 0;
        std::memcpy(&v, row.data() + j * width, width);
        if (width == 4) v = static_cast<int32_t>(v);
        ids[j] = static_cast<int32_t>(v);
      }
      out.push_back(std::move(ids));
    }
    return out;
  }
  if (!EndsWith(path, ".ivecs")) Die("ground truth must be .ivecs or .npy: " + path);
  for (size_t r = 0; r < limit; ++r) {
    int32_t d = 0;
    if (!in.read(reinterpret_cast<char*>(&d), 4)) break;
    if (d <= 0 || d > 100000) Die(fmt::format("{}: bad row length {}", path, d));
    std::vector<int32_t> ids(static_cast<size_t>(d));
    if (!in.read(reinterpret_cast<char*>(ids.data()), 4 * static_cast<std::streamsize>(d))) {
      Die("truncated " + path);
    }
    out.push_back(std::move(ids));
  }
  return out;
}

}  // namespace qvec::bench
