// qvec as an embedded library: open a database, create a collection, insert
// points with payloads, search. Build: `make build` (or see CMakeLists.txt here
// for a build against the installed package); run:
//   build/bin/qvec-example-embedded /tmp/qvec-example
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "qvec/database.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "/tmp/qvec-example";

  qvec::DatabaseOptions options;
  auto db = qvec::Database::Open(options, path);
  if (!db.ok()) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), db.status().ToString().c_str());
    return 1;
  }

  qvec::CollectionConfig config;
  config.dimension = 64;
  config.distance = qvec::Distance::kCosine;
  qvec::Status created = (*db)->CreateCollection("demo", config);
  if (!created.ok() && created.code() != qvec::StatusCode::kAlreadyExists) {
    std::fprintf(stderr, "create: %s\n", created.ToString().c_str());
    return 1;
  }
  auto collection = (*db)->GetCollection("demo");
  if (!collection.ok()) {
    std::fprintf(stderr, "get: %s\n", collection.status().ToString().c_str());
    return 1;
  }

  // 1000 random points, each with a small payload.
  std::mt19937 rng(42);
  std::normal_distribution<float> normal;
  std::vector<qvec::Point> points(1000);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].id = qvec::PointId::Num(i);
    points[i].vector.resize(config.dimension);
    for (float& x : points[i].vector) x = normal(rng);
    points[i].payload = "{\"group\":" + std::to_string(i % 10) + "}";
  }
  if (auto s = (*collection)->Upsert(points); !s.ok()) {
    std::fprintf(stderr, "upsert: %s\n", s.ToString().c_str());
    return 1;
  }

  // The 5 nearest neighbours of point 7, among points of group 7.
  qvec::SearchRequest request;
  request.vector = points[7].vector;
  request.limit = 5;
  request.with_payload = true;
  qvec::Filter filter;
  qvec::Condition group;
  group.kind = qvec::Condition::Kind::kMatchValue;
  group.key = "group";
  group.value = int64_t{7};
  filter.must.push_back(group);
  request.filter = filter;
  auto hits = (*collection)->Search(request);
  if (!hits.ok()) {
    std::fprintf(stderr, "search: %s\n", hits.status().ToString().c_str());
    return 1;
  }
  for (const auto& hit : *hits) {
    std::printf("id=%s score=%.4f payload=%s\n", hit.id.ToString().c_str(), hit.score,
                hit.payload.value_or("null").c_str());
  }
  return 0;
}
