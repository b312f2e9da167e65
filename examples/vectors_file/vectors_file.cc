// Loads vectors from a .fvecs or .npy file (float32, one row per vector),
// builds a qvec collection from them with the bulk API, and answers queries:
// the rows of a second file, or the first rows of the first one.
//
//   qvec-example-vectors-file DATA_DIR BASE.fvecs|BASE.npy [QUERIES.fvecs|.npy] [K]
//
// .fvecs: per row an int32 dimension then that many float32 (the SIFT/GIST
// format). .npy: NumPy's format, a 2-D little-endian float32 array in C order.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "qvec/blas.h"
#include "qvec/database.h"

namespace {

struct Matrix {
  size_t rows = 0;
  size_t dim = 0;
  std::vector<float> data;  // rows * dim
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An empty string on success, else why the file is not usable.
std::string ReadFvecs(const std::string& path, Matrix* m) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  int32_t dim = 0;
  while (in.read(reinterpret_cast<char*>(&dim), 4)) {
    if (dim <= 0 || dim > 65536) return path + ": bad dimension " + std::to_string(dim);
    if (m->dim == 0) m->dim = static_cast<size_t>(dim);
    if (static_cast<size_t>(dim) != m->dim) return path + ": rows of different dimensions";
    const size_t at = m->data.size();
    m->data.resize(at + m->dim);
    if (!in.read(reinterpret_cast<char*>(m->data.data() + at), static_cast<std::streamsize>(4 * m->dim))) {
      return path + ": truncated row";
    }
    ++m->rows;
  }
  return m->rows > 0 ? "" : path + ": no vectors";
}

std::string ReadNpy(const std::string& path, Matrix* m) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) return path + ": not a .npy file";
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t len16 = 0;
    in.read(reinterpret_cast<char*>(&len16), 2);
    header_len = len16;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) return path + ": truncated header";
  if (header.find("'descr': '<f4'") == std::string::npos) return path + ": not float32 ('<f4')";
  if (header.find("'fortran_order': False") == std::string::npos) return path + ": not C order";
  const size_t shape = header.find("'shape': (");
  if (shape == std::string::npos) return path + ": no shape";
  unsigned long long rows = 0, dim = 0;
  if (std::sscanf(header.c_str() + shape, "'shape': (%llu, %llu)", &rows, &dim) != 2 || dim == 0 ||
      dim > 65536) {
    return path + ": expected a 2-D array";
  }
  m->rows = rows;
  m->dim = dim;
  m->data.resize(m->rows * m->dim);
  if (!in.read(reinterpret_cast<char*>(m->data.data()), static_cast<std::streamsize>(4 * m->data.size()))) {
    return path + ": truncated data";
  }
  return m->rows > 0 ? "" : path + ": no vectors";
}

std::string Read(const std::string& path, Matrix* m) {
  if (EndsWith(path, ".fvecs")) return ReadFvecs(path, m);
  if (EndsWith(path, ".npy")) return ReadNpy(path, m);
  return path + ": expected a .fvecs or .npy file";
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  qvec::UseBestBlasKernels(argv);  // IVF training speed on some CPUs (qvec/blas.h)
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR BASE.fvecs|BASE.npy [QUERIES] [K]\n", argv[0]);
    return 2;
  }
  Matrix base, queries;
  if (std::string err = Read(argv[2], &base); !err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  if (argc > 3) {
    if (std::string err = Read(argv[3], &queries); !err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    if (queries.dim != base.dim) {
      std::fprintf(stderr, "queries have dimension %zu, the base %zu\n", queries.dim, base.dim);
      return 1;
    }
  } else {
    queries.dim = base.dim;
    queries.rows = std::min<size_t>(10, base.rows);
    queries.data.assign(base.data.begin(), base.data.begin() + queries.rows * base.dim);
  }
  const size_t k = argc > 4 ? std::stoul(argv[4]) : 5;

  auto db = qvec::Database::Open(qvec::DatabaseOptions(), argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 1;
  }
  qvec::CollectionConfig config;
  config.dimension = static_cast<uint32_t>(base.dim);
  config.distance = qvec::Distance::kEuclid;
  (void)(*db)->DropCollection("vectors");  // a fresh collection each run
  if (qvec::Status s = (*db)->CreateCollection("vectors", config); !s.ok()) {
    std::fprintf(stderr, "create: %s\n", s.ToString().c_str());
    return 1;
  }
  auto collection = (*db)->GetCollection("vectors");
  if (!collection.ok()) return 1;
  qvec::Collection& c = **collection;

  // Ids 0 .. rows-1, the vectors straight from the file's array.
  std::vector<qvec::PointId> ids(base.rows);
  for (size_t i = 0; i < base.rows; ++i) ids[i] = qvec::PointId::Num(i);
  auto start = std::chrono::steady_clock::now();
  if (qvec::Status s = c.UpsertArrays(ids, base.data); !s.ok()) {
    std::fprintf(stderr, "upsert: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("loaded %zu vectors of dimension %zu in %.2f s\n", base.rows, base.dim,
              Seconds(start));
  // Builds the index now (IVF past 20000 points) instead of in the background.
  start = std::chrono::steady_clock::now();
  if (qvec::Status s = c.Optimize(); !s.ok()) {
    std::fprintf(stderr, "optimize: %s\n", s.ToString().c_str());
    return 1;
  }
  auto info = c.Info();
  std::printf("index %s built in %.2f s\n", info.ok() ? info->index.kind.c_str() : "?",
              Seconds(start));

  qvec::SearchRequest common;
  common.limit = k;
  start = std::chrono::steady_clock::now();
  auto hits = c.SearchMatrix(queries.data, common);
  if (!hits.ok()) {
    std::fprintf(stderr, "search: %s\n", hits.status().ToString().c_str());
    return 1;
  }
  const double secs = Seconds(start);
  for (size_t q = 0; q < hits->size() && q < 10; ++q) {
    std::printf("query %zu:", q);
    for (const qvec::ScoredPoint& h : (*hits)[q]) {
      std::printf(" %s (%.4f)", h.id.ToString().c_str(), h.score);
    }
    std::printf("\n");
  }
  std::printf("%zu queries in %.3f s (%.0f per second)\n", queries.rows, secs,
              static_cast<double>(queries.rows) / secs);
  return 0;
}
