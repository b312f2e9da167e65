// A program that uses qvec the way an embedding project does, built by
// tests/consumer/consumer_test.sh against the installed package, through
// add_subdirectory and through pkg-config. Exits 0 and prints
// "consumer ok <version>" when every step worked.
#include <qvec/blas.h>
#include <qvec/database.h>
#include <qvec/version.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "consumer: check failed: %s\n", #cond);    \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int main(int argc, char** argv) {
  CHECK(argc == 2);
  CHECK(qvec::Version() == QVEC_VERSION_STRING);
  CHECK(QVEC_VERSION_MAJOR == 0 && QVEC_VERSION_MINOR >= 2);
  auto db = qvec::Database::Open(qvec::DatabaseOptions(), argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 1;
  }
  qvec::CollectionConfig config;
  config.dimension = 16;
  config.distance = qvec::Distance::kDot;
  CHECK((*db)->CreateCollection("c", config).ok());
  auto c = (*db)->GetCollection("c");
  CHECK(c.ok());

  // Bulk upsert from one array, then a batch search from a query matrix.
  const size_t n = 500, dim = 16;
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  std::vector<float> vectors(n * dim);
  for (float& x : vectors) x = g(rng);
  std::vector<qvec::PointId> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = qvec::PointId::Num(i);
  CHECK((*c)->UpsertArrays(ids, vectors).ok());
  qvec::SearchRequest common;
  common.limit = 3;
  common.params.exact = true;
  std::vector<float> queries(vectors.begin(), vectors.begin() + 4 * dim);
  auto hits = (*c)->SearchMatrix(queries, common);
  CHECK(hits.ok());
  CHECK(hits->size() == 4);
  // Each row's best match by dot product.
  for (size_t q = 0; q < 4; ++q) {
    size_t best = 0;
    float best_score = -1e30f;
    for (size_t i = 0; i < n; ++i) {
      float s = 0;
      for (size_t d = 0; d < dim; ++d) s += vectors[q * dim + d] * vectors[i * dim + d];
      if (s > best_score) {
        best_score = s;
        best = i;
      }
    }
    CHECK((*hits)[q].front().id == qvec::PointId::Num(best));
  }

  // Errors come back as a Status, never as a crash.
  std::vector<float> wrong(dim + 1, 1.0f);
  qvec::Status bad = (*c)->UpsertArrays(std::span<const qvec::PointId>(ids.data(), 1), wrong);
  CHECK(bad.code() == qvec::StatusCode::kInvalidArgument);
  CHECK(!bad.ToString().empty());
  auto uuid = qvec::PointId::ParseUuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  CHECK(uuid.ok() && uuid->ToString() == "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  CHECK(qvec::ParseDistance("Cosine").ok());
  CHECK(!qvec::ValidateCollectionName("a/b").ok());
  (void)qvec::RecommendedBlasCoreType();

  auto info = (*c)->Info();
  CHECK(info.ok() && info->points_count == n);
  std::printf("consumer ok %s\n", std::string(qvec::Version()).c_str());
  return 0;
}
