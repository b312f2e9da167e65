// The bodies of the fuzz targets, shared by the libFuzzer harnesses
// (tests/fuzz/*_fuzzer.cc, `make fuzz`, clang with ASan + UBSan) and by the
// seed-corpus replay test in the regular suite (tests/server/fuzz_replay_test.cc).
//
// Input formats:
//   router:       "METHOD TARGET\n" followed by the request body, e.g.
//                 "POST /collections/c/points/search\n{\"vector\":[1,2,3,4]}".
//   json_request: one request body, decoded by every parser of
//                 server/json_request.h.
// Both return normally for every input; a crash, sanitizer report or failed
// invariant (abort) is a finding.
#ifndef QVEC_TESTS_FUZZ_FUZZ_TARGETS_H_
#define QVEC_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/json_request.h"
#include "server/router.h"
#include "tests/util/temp_dir.h"

namespace qvec::fuzz {

inline void FuzzCheck(bool ok, const char* what, std::string_view detail) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant failed: %s\n%.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

// One database in a temporary directory for the whole process, holding
// collection "c" (4-d, Dot, a few points with payloads) and "u" (Cosine).
class RouterFixture {
 public:
  // Destroyed at exit: the database closes, then its directory is removed.
  static RouterFixture& Get() {
    static RouterFixture fixture;
    return fixture;
  }

  server::RequestHandler& router() { return *router_; }

  // Recreates the fixture collections if an input dropped them.
  void EnsureCollections() {
    Call("PUT", "/collections/c", R"({"vectors":{"size":4,"distance":"Dot"}})");
    Call("PUT", "/collections/u", R"({"vectors":{"size":4,"distance":"Cosine"}})");
    if (++calls_ % 64 == 1) {
      Call(
          "PUT", "/collections/c/points?wait=true",
          R"({"points":[{"id":1,"vector":[0.05,0.61,0.76,0.74],"payload":{"city":"Berlin","n":1}},)"
          R"({"id":2,"vector":[0.19,0.81,0.75,0.11],"payload":{"city":"London","n":2,"t":[1,2]}},)"
          R"({"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":[0.36,0.55,0.47,0.94],)"
          R"("payload":{"city":"Moscow","n":3.5,"b":true,"o":{"x":null}}}]})");
    }
  }

  server::HttpResponse Call(std::string method, std::string target, std::string body) {
    server::HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    return router_->Handle(r);
  }

 private:
  RouterFixture() {
    server::RouterOptions options;
    options.data_dir = dir_.Sub("data");
    options.snapshots_dir = dir_.Sub("snapshots");
    options.database.background_indexing = false;
    auto router = server::MakeRouter(options);
    FuzzCheck(router.ok(), "MakeRouter", router.ok() ? "" : router.status().ToString());
    router_ = *router;
  }

  testing_util::TempDir dir_;
  std::shared_ptr<server::RequestHandler> router_;
  uint64_t calls_ = 0;
};

// Returns the response status (0 when the input was skipped).
inline unsigned FuzzRouter(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t eol = in.find('\n');
  std::string_view line = in.substr(0, eol);
  std::string body(eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1));
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  std::string method(line.substr(0, space));
  std::string target(line.substr(space + 1));
  // Snapshots write whole checkpoints to disk; not worth fuzzing at speed.
  if (target.find("snapshots") != std::string::npos) return 0;
  auto& fixture = RouterFixture::Get();
  fixture.EnsureCollections();
  server::HttpResponse r = fixture.Call(method, target, std::move(body));
  FuzzCheck(r.status >= 200 && r.status <= 599, "HTTP status in range", std::to_string(r.status));
  FuzzCheck(r.status != 500, "no internal error for any request", r.body);
  if (r.content_type == "application/json") {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    FuzzCheck(parser.parse(r.body).get(doc) == simdjson::SUCCESS, "response is valid JSON",
              r.body.substr(0, 2000));
  }
  return r.status;
}

// Returns 1 when the input parsed as a JSON object, else 0.
inline unsigned FuzzJsonRequest(const uint8_t* data, size_t size) {
  thread_local simdjson::dom::parser parser;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto doc = server::ParseBody(parser, body);
  if (!doc.ok()) return 0;
  simdjson::dom::element e = *doc;
  (void)server::ParseSearchRequest(e);
  (void)server::ParseSearchBatch(e);
  (void)server::ParsePoints(e);
  (void)server::ParseCollectionConfig(e);
  (void)server::ParseRetrieve(e);
  (void)server::ParseDeletePoints(e);
  (void)server::ParseSetPayload(e, false);
  (void)server::ParseSetPayload(e, true);
  (void)server::ParseDeletePayload(e);
  (void)server::ParseClearPayload(e);
  (void)server::ParseUpdateVectors(e);
  (void)server::ParseDeleteVectors(e);
  (void)server::ParseCount(e);
  (void)server::ParseScroll(e);
  (void)server::ParseCreateFieldIndex(e);
  (void)server::ParseFilter(e);
  // Every member as a filter, a point id and a vector too.
  for (auto field : simdjson::dom::object(e)) {
    (void)server::ParseFilter(field.value);
    (void)server::ParsePointId(field.value);
    std::vector<float> v;
    (void)server::ParseVector(field.value, &v);
    if (field.value.type() == simdjson::dom::element_type::STRING) {
      (void)server::ParsePointIdText(std::string_view(field.value));
    }
  }
  return 1;
}

}  // namespace qvec::fuzz

#endif  // QVEC_TESTS_FUZZ_FUZZ_TARGETS_H_
