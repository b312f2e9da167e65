// Handler tests: the router is a plain function from request to response,
// exercised here without sockets.
#include "server/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <simdjson.h>

#include "qvec/version.h"
#include "tests/util/temp_dir.h"

namespace qvec::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_util::TempDir;

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RouterOptions options;
    options.data_dir = dir_.Sub("data");
    options.snapshots_dir = dir_.Sub("snapshots");
    auto router = MakeRouter(options);
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = *router;
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    return router_->Handle(r);
  }

  // Asserts a JSON body and returns the parsed document's element at result.
  simdjson::dom::element Json(const HttpResponse& r) {
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
    return doc;
  }

  void CreateDemo() {
    auto r = Call("PUT", "/collections/demo", R"({"vectors":{"size":4,"distance":"Cosine"}})");
    ASSERT_EQ(r.status, 200u) << r.body;
    r = Call("PUT", "/collections/demo/points?wait=true", R"({"points":[
      {"id":1,"vector":[0.05,0.61,0.76,0.74],"payload":{"city":"Berlin","n":1}},
      {"id":2,"vector":[0.19,0.81,0.75,0.11],"payload":{"city":"London","n":2}},
      {"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":[0.36,0.55,0.47,0.94],
       "payload":{"city":"Moscow","n":3}}]})");
    ASSERT_EQ(r.status, 200u) << r.body;
  }

  // The count of points of `collection` passing `filter` (JSON), -1 (and a
  // failure) if the request is refused.
  int64_t CountIn(const std::string& collection, const std::string& filter) {
    std::string body = R"({"filter":)";  // appended, not +: GCC 12's -Wrestrict false positive
    body += filter;
    body += '}';
    auto resp = Call("POST", "/collections/" + collection + "/points/count", body);
    EXPECT_EQ(resp.status, 200u) << filter << " -> " << resp.body;
    if (resp.status != 200u) return -1;
    return int64_t(Json(resp)["result"]["count"]);
  }
  // {"must": [condition]}.
  static std::string Must(const std::string& condition) {
    std::string f = R"({"must":[)";
    f += condition;
    f += "]}";
    return f;
  }

  TempDir dir_;
  std::shared_ptr<RequestHandler> router_;
  simdjson::dom::parser parser_;
};

TEST_F(RouterTest, DashboardIsServedFromTheBinary) {
  auto r = Call("GET", "/dashboard");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("/dashboard/app.js"));
  r = Call("GET", "/dashboard/app.js");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_GT(r.body.size(), 1000u);
  EXPECT_EQ(Call("GET", "/dashboard/app.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(Call("GET", "/dashboard/nope.js").status, 404u);
  EXPECT_EQ(Call("GET", "/dashboard/a/b").status, 404u);
  EXPECT_EQ(Call("POST", "/dashboard", "{}").status, 405u);
  // The page is public; the API calls it makes carry the key.
  EXPECT_EQ(router_->RequiredAccess("GET", "/dashboard"), Access::kNone);
  EXPECT_EQ(router_->RequiredAccess("GET", "/dashboard/app.js"), Access::kNone);
  EXPECT_EQ(router_->RequiredAccess("GET", "/dashboardx"), Access::kRead);
}

TEST_F(RouterTest, RootAndEmptyCollections) {
  auto r = Call("GET", "/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_THAT(r.body, HasSubstr(std::string("\"qvec_version\":\"") + QVEC_VERSION_STRING + "\""));
  r = Call("GET", "/collections");
  EXPECT_EQ(r.status, 200u);
  EXPECT_THAT(r.body, HasSubstr(R"({"result":{"collections":[]},"status":"ok","time":)"));
  EXPECT_EQ(Call("GET", "/healthz").status, 200u);
  EXPECT_EQ(Call("GET", "/readyz").status, 200u);
}

TEST_F(RouterTest, CollectionLifecycle) {
  CreateDemo();
  auto r = Call("PUT", "/collections/demo", R"({"vectors":{"size":4,"distance":"Cosine"}})");
  EXPECT_EQ(r.status, 409u);
  r = Call("GET", "/collections/demo/exists");
  EXPECT_THAT(r.body, HasSubstr(R"("result":{"exists":true})"));
  r = Call("GET", "/collections/demo");
  ASSERT_EQ(r.status, 200u);
  auto doc = Json(r);
  EXPECT_EQ(uint64_t(doc["result"]["points_count"]), 3u);
  EXPECT_EQ(std::string_view(doc["result"]["status"]), "green");
  EXPECT_EQ(uint64_t(doc["result"]["config"]["params"]["vectors"]["size"]), 4u);
  r = Call("GET", "/collections");
  EXPECT_THAT(r.body, HasSubstr(R"({"name":"demo"})"));
  r = Call("DELETE", "/collections/demo");
  EXPECT_THAT(r.body, HasSubstr(R"("result":true)"));
  r = Call("GET", "/collections/demo/exists");
  EXPECT_THAT(r.body, HasSubstr(R"("result":{"exists":false})"));
  EXPECT_EQ(Call("GET", "/collections/demo").status, 404u);
}

TEST_F(RouterTest, SearchQueryRetrieveScrollCount) {
  CreateDemo();
  auto r = Call("POST", "/collections/demo/points/search",
                R"({"vector":[0.2,0.1,0.9,0.7],"limit":3,"with_payload":true})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = Json(r);
  simdjson::dom::array hits = doc["result"];
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(uint64_t(hits.at(0)["id"]), 1u);
  EXPECT_EQ(std::string_view(hits.at(0)["payload"]["city"]), "Berlin");
  EXPECT_NEAR(double(hits.at(0)["score"]), 0.8946, 0.01);
  EXPECT_EQ(std::string_view(hits.at(1)["id"]), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");

  r = Call("POST", "/collections/demo/points/query",
           R"({"query":[0.2,0.1,0.9,0.7],"limit":2,
               "filter":{"must":[{"key":"city","match":{"value":"London"}}]}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  doc = Json(r);
  simdjson::dom::array points = doc["result"]["points"];
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(uint64_t(points.at(0)["id"]), 2u);

  r = Call("POST", "/collections/demo/points", R"({"ids":[2,1],"with_vector":true})");
  ASSERT_EQ(r.status, 200u) << r.body;
  doc = Json(r);
  simdjson::dom::array recs = doc["result"];
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(uint64_t(recs.at(0)["id"]), 2u);
  EXPECT_EQ(simdjson::dom::array(recs.at(0)["vector"]).size(), 4u);

  r = Call("GET", "/collections/demo/points/1");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("Berlin"));
  EXPECT_EQ(Call("GET", "/collections/demo/points/77").status, 404u);
  EXPECT_EQ(Call("GET", "/collections/demo/points/not-an-id").status, 400u);

  r = Call("POST", "/collections/demo/points/scroll", R"({"limit":2})");
  ASSERT_EQ(r.status, 200u) << r.body;
  doc = Json(r);
  // Ids order numbers before UUIDs: 1, 2, then the UUID on the next page.
  EXPECT_EQ(std::string_view(doc["result"]["next_page_offset"]),
            "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ(simdjson::dom::array(doc["result"]["points"]).size(), 2u);

  r = Call("POST", "/collections/demo/points/count",
           R"({"filter":{"must":[{"key":"n","range":{"gte":2}}]},"exact":true})");
  EXPECT_THAT(r.body, HasSubstr(R"("result":{"count":2})"));

  r = Call("POST", "/collections/demo/points/search/batch",
           R"({"searches":[{"vector":[1,0,0,0],"limit":1},{"vector":[0,1,0,0],"limit":2}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  doc = Json(r);
  EXPECT_EQ(simdjson::dom::array(doc["result"]).size(), 2u);

  r = Call("POST", "/collections/demo/points/delete", R"({"points":[1]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points/delete",
           R"({"filter":{"must":[{"key":"city","match":{"any":["London"]}}]}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("result":{"count":1})"));
}

TEST_F(RouterTest, ColumnarBatchUpsertAndPayloadUpdate) {
  auto r = Call("PUT", "/collections/c", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/c/points",
           R"({"batch":{"ids":[1,2],"vectors":[[1,0],[0,1]],"payloads":[{"a":1},null]}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/c/points/payload", R"({"payload":{"b":2},"points":[1]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("GET", "/collections/c/points/1");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"a":1,"b":2})"));
}

TEST_F(RouterTest, BadInputGetsJsonErrors) {
  CreateDemo();
  struct Case {
    std::string method, target, body;
    unsigned status;
  };
  const std::vector<Case> cases = {
      {"POST", "/collections/demo/points/search", "{", 400},
      {"POST", "/collections/demo/points/search", "[1,2]", 400},
      {"POST", "/collections/demo/points/search", R"({"vector":[1,2,3]})", 400},
      {"POST", "/collections/demo/points/search", R"({"vector":[1,2,3,"x"]})", 400},
      {"POST", "/collections/demo/points/search", R"({"vector":[1,2,3,1e39]})", 400},
      {"POST", "/collections/demo/points/search", R"({"vector":[1,2,3,4],"limit":0})", 422},
      {"POST", "/collections/demo/points/search", R"({"vector":"abc"})", 400},
      {"POST", "/collections/demo/points/search", std::string(100, '[') + std::string(100, ']'),
       400},
      {"PUT", "/collections/demo/points", R"({"points":[{"id":-1,"vector":[1,2,3,4]}]})", 400},
      {"PUT", "/collections/demo/points", R"({"points":[{"id":"nope","vector":[1,2,3,4]}]})", 400},
      {"PUT", "/collections/demo/points", R"({"points":[{"id":9,"vector":[0,0,0,0]}]})", 400},
      {"PUT", "/collections/demo/points", R"({"points":[{"id":9,"vector":[1,2,3,4],"payload":5}]})",
       400},
      {"PUT", "/collections/x", R"({"vectors":{"size":0,"distance":"Cosine"}})", 422},
      {"PUT", "/collections/x", R"({"vectors":{"size":70000,"distance":"Cosine"}})", 422},
      {"PUT", "/collections/x", R"({"vectors":{"size":4,"distance":"Hamming"}})", 400},
      {"PUT", "/collections/a%2Fb", R"({"vectors":{"size":4,"distance":"Cosine"}})", 422},
      {"PUT", "/collections/..", R"({"vectors":{"size":4,"distance":"Cosine"}})", 422},
      {"PUT", "/collections/%zz", R"({"vectors":{"size":4,"distance":"Cosine"}})", 400},
      {"GET", "/nope", "", 404},
      {"DELETE", "/collections/demo/points/search", "", 405},
      {"POST", "/collections/missing/points/search", R"({"vector":[1,2,3,4]})", 404},
  };
  for (const auto& c : cases) {
    auto r = Call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << " -> "
                                  << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_THAT(r.body, HasSubstr(R"("status":{"error":)")) << r.body;
  }
  // The data is unchanged.
  auto r = Call("POST", "/collections/demo/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("result":{"count":3})"));
}

TEST_F(RouterTest, NamedVectorsInEveryShape) {
  auto r = Call("PUT", "/collections/nv", R"({
    "vectors": {"text": {"size": 3, "distance": "Cosine"},
                "image": {"size": 2, "distance": "Manhattan",
                          "qvec": {"index": {"ivf_threshold": 5000}}}},
    "qvec": {"index": {"ivf_threshold": 7000}}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("GET", "/collections/nv");
  ASSERT_EQ(r.status, 200u);
  auto info = Json(r)["result"];
  EXPECT_EQ(uint64_t(info["config"]["params"]["vectors"]["text"]["size"]), 3u);
  EXPECT_EQ(std::string_view(info["config"]["params"]["vectors"]["image"]["distance"]),
            "Manhattan");
  // Collection-wide qvec options are each field's default; a field's own win.
  EXPECT_EQ(std::string_view(info["qvec"]["vectors"]["text"]["index"]["state"]), "flat");
  r = Call("PUT", "/collections/nv/points", R"({"points":[
      {"id":1,"vector":{"text":[1,0,0],"image":[1,1]},"payload":{"a":1}},
      {"id":2,"vector":{"text":[0,1,0]}},
      {"id":3,"vector":{"image":[3,3]}},
      {"id":4,"vector":{}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/nv/points",
           R"({"batch":{"ids":[5,6],"vectors":{"image":[[0,0],[5,5]]}}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(Call("POST", "/collections/nv/points/count", "{}").body, HasSubstr(R"("count":6)"));

  // `using` picks the field; Manhattan scores are L1 distances, smallest first.
  r = Call("POST", "/collections/nv/points/query",
           R"({"query":[1,1],"using":"image","with_vector":["image"],"limit":3})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(
      r.body,
      HasSubstr(R"({"id":1,"version":0,"score":0,"payload":null,"vector":{"image":[1,1]}})"));
  EXPECT_THAT(r.body, HasSubstr(R"({"id":5,"version":0,"score":2,)"));
  EXPECT_THAT(r.body, HasSubstr(R"({"id":3,"version":0,"score":4,)"));
  // /points/search names the field in the vector.
  r = Call("POST", "/collections/nv/points/search",
           R"({"vector":{"name":"text","vector":[0,1,0]},"limit":1})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("id":2,)"));
  // Retrieve: each point's fields, only those asked for.
  r = Call("POST", "/collections/nv/points", R"({"ids":[1,2,4],"with_vector":true})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("id":2,"payload":{},"vector":{"text":[0,1,0]}})"));
  EXPECT_THAT(r.body, HasSubstr(R"("id":4,"payload":{},"vector":{}})"));
  r = Call("POST", "/collections/nv/points", R"({"ids":[1],"with_vector":["image"]})");
  EXPECT_THAT(r.body, HasSubstr(R"("vector":{"image":[1,1]})"));
  r = Call("POST", "/collections/nv/points", R"({"ids":[1]})");
  EXPECT_THAT(r.body, HasSubstr(R"("vector":null)"));
  r = Call("GET", "/collections/nv/points/3");
  EXPECT_THAT(r.body, HasSubstr(R"("vector":{"image":[3,3]})"));

  // Refused, naming the problem, and nothing written.
  for (const char* body : {
           R"({"points":[{"id":9,"vector":[1,2,3]}]})",         // unnamed
           R"({"points":[{"id":9,"vector":{"nope":[1,2]}}]})",  // unknown
           R"({"points":[{"id":9,"vector":{"text":[1,2]}}]})",  // dimension
           R"({"points":[{"id":9,"vector":{"text":{"indices":[1],"values":[1]}}}]})",
           R"({"points":[{"id":9,"vector":{"text":[[1,2,3]]}}]})",           // multivector
           R"({"batch":{"ids":[9],"vectors":{"text":[[1,0,0],[0,1,0]]}}})",  // lengths
       }) {
    r = Call("PUT", "/collections/nv/points", body);
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
  }
  EXPECT_THAT(Call("POST", "/collections/nv/points/count", "{}").body, HasSubstr(R"("count":6)"));
  r = Call("POST", "/collections/nv/points/query", R"({"query":[1,1]})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("named vectors"));
  r = Call("POST", "/collections/nv/points/query", R"({"query":[1,1],"using":"nope"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("'nope'"));
  r = Call("POST", "/collections/nv/points", R"({"ids":[1],"with_vector":["nope"]})");
  EXPECT_EQ(r.status, 400u);

  // Create-time shapes qvec does not store are refused by name.
  struct Bad {
    const char* body;
    const char* says;
  };
  for (const Bad& bad : {
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Dot"}},"sparse_vectors":{"a":{}}})",
               "both a dense and a sparse"},
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Dot"}},
                   "sparse_vectors":{"s":{"index":{"datatype":"uint8"}}}})",
               "sparse_vectors.s.index.datatype"},
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Dot"}},"sparse_vectors":{"s":{"modifier":"bm25"}}})",
               "sparse_vectors.s.modifier"},
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Dot","multivector_config":
                   {"comparator":"max_sim"}}}})",
               "multivector"},
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Dot","datatype":"float16"}}})", "datatype"},
           Bad{R"({"vectors":{"a":{"size":2}}})", "vectors.a.distance"},
           Bad{R"({"vectors":{"a":{"distance":"Dot"}}})", "vectors.a.size"},
           Bad{R"({"vectors":{}})", "at least one"},
           Bad{R"({"vectors":{"":{"size":2,"distance":"Dot"}}})", "empty"},
           Bad{R"({"vectors":{"a":{"size":2,"distance":"Manhattan",
                   "qvec":{"quantization":{"granularity":"per_dimension"}}}}})",
               "per_dimension"},
       }) {
    r = Call("PUT", "/collections/bad", bad.body);
    EXPECT_EQ(r.status / 100, 4u) << bad.body << " -> " << r.body;
    EXPECT_THAT(r.body, HasSubstr(bad.says)) << bad.body;
  }
  EXPECT_THAT(Call("GET", "/collections/bad/exists").body, HasSubstr(R"("exists":false)"));
}

TEST_F(RouterTest, WaitAndOrderingParameters) {
  CreateDemo();
  for (const char* q : {"?wait=true", "?wait=false", "?ordering=strong", "?wait=false&ordering=weak"}) {
    auto r = Call("PUT", std::string("/collections/demo/points") + q,
                  R"({"points":[{"id":7,"vector":[1,2,3,4]}]})");
    ASSERT_EQ(r.status, 200u) << q << r.body;
    // Applied before the answer, whatever `wait` says.
    EXPECT_THAT(r.body, HasSubstr(R"("status":"completed")")) << q;
    EXPECT_EQ(Call("GET", "/collections/demo/points/7").status, 200u) << q;
  }
  auto r = Call("PUT", "/collections/demo/points?wait=maybe",
                R"({"points":[{"id":8,"vector":[1,2,3,4]}]})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("wait"));
  r = Call("PUT", "/collections/demo/points?ordering=fast", R"({"points":[{"id":8,"vector":[1,2,3,4]}]})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("ordering"));
  EXPECT_EQ(Call("GET", "/collections/demo/points/8").status, 404u);  // nothing written
}

TEST_F(RouterTest, PayloadSelectors) {
  CreateDemo();
  auto r = Call("POST", "/collections/demo/points", R"({"ids":[1],"with_payload":["city"]})");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"city":"Berlin"})"));
  r = Call("POST", "/collections/demo/points",
           R"({"ids":[1],"with_payload":{"exclude":["city"]}})");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"n":1})"));
  r = Call("POST", "/collections/demo/points/query",
           R"({"query":[0.05,0.61,0.76,0.74],"limit":1,"with_payload":{"include":["n"]}})");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"n":1})"));
  r = Call("POST", "/collections/demo/points/search",
           R"({"vector":[0.05,0.61,0.76,0.74],"limit":1})");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":null)"));
  r = Call("POST", "/collections/demo/points", R"({"ids":[1],"with_payload":5})");
  EXPECT_EQ(r.status, 400u);
}

TEST_F(RouterTest, AccessLevels) {
  EXPECT_EQ(router_->RequiredAccess("GET", "/healthz"), Access::kNone);
  EXPECT_EQ(router_->RequiredAccess("GET", "/collections"), Access::kRead);
  EXPECT_EQ(router_->RequiredAccess("POST", "/collections/a/points/search"), Access::kRead);
  EXPECT_EQ(router_->RequiredAccess("POST", "/collections/a/points/query?x=1"), Access::kRead);
  EXPECT_EQ(router_->RequiredAccess("PUT", "/collections/a/points"), Access::kWrite);
  EXPECT_EQ(router_->RequiredAccess("POST", "/collections/a/points/delete"), Access::kWrite);
  EXPECT_EQ(router_->RequiredAccess("DELETE", "/collections/a"), Access::kWrite);
}

TEST_F(RouterTest, MetricsAndSnapshot) {
  CreateDemo();
  auto r = Call("POST", "/collections/demo/snapshots");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("name":"demo-)"));
  EXPECT_THAT(r.body, HasSubstr(R"(.snapshot","creation_time":")"));
  EXPECT_THAT(r.body, HasSubstr(R"("checksum":")"));
  // The download is the file itself, streamed by the server.
  const std::string name = r.body.substr(r.body.find("demo-"));
  auto dl = Call("GET", "/collections/demo/snapshots/" + name.substr(0, name.find('"')));
  ASSERT_EQ(dl.status, 200u) << dl.body;
  EXPECT_EQ(dl.content_type, "application/octet-stream");
  EXPECT_FALSE(dl.file_path.empty());
  EXPECT_EQ(Call("GET", "/collections/demo/snapshots/x.snapshot").status, 404u);
  EXPECT_EQ(Call("GET", "/collections/demo/snapshots/.hidden.snapshot").status, 400u);
  EXPECT_EQ(Call("DELETE", "/collections/demo/snapshots/a%2F..%2Fb.snapshot").status, 400u);
  // A create takes no body fields.
  EXPECT_EQ(Call("POST", "/collections/demo/snapshots", R"({"wal":true})").status, 400u);
  r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_THAT(r.body, HasSubstr("qvec_http_requests_total{method=\"PUT\",route=\"/collections/"
                                "{name}/points\",status=\"200\"} 1"));
  EXPECT_THAT(r.body, HasSubstr("qvec_collection_points{collection=\"demo\"} 3"));
}

// Filters evaluate as Qdrant does for payload fields without an index.
TEST_F(RouterTest, FilterConditionsWithQdrantsSemantics) {
  auto r = Call("PUT", "/collections/f", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/f/points", R"({"points":[
    {"id":1,"vector":[1,0],"payload":{"text":"hello world","tags":["a","b"]}},
    {"id":2,"vector":[0,1],"payload":{"text":"Hello there","tags":[]}},
    {"id":3,"vector":[1,1],"payload":{"tags":null}},
    {"id":4,"vector":[1,2],"payload":{"text":["big world","x"],"tags":"a"}},
    {"id":5,"vector":[2,1],"payload":{"tags":[null],"obj":{}}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto count = [&](const std::string& filter) { return CountIn("f", filter); };
  auto must = [](const std::string& c) { return Must(c); };
  // Full-text conditions without a text index: case-sensitive substrings.
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text":"llo wor"}})")), 1);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text":"world"}})")), 2);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text":"Hello"}})")), 1);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"phrase":"hello world"}})")), 1);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text_any":"moon world"}})")), 2);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text_any":"there  zzz"}})")), 1);
  EXPECT_EQ(count(must(R"({"key":"text","match":{"text_any":"  "}})")), 0);
  // values_count counts array elements (nulls included), 1 for a scalar.
  EXPECT_EQ(count(must(R"({"key":"tags","values_count":{"gt":1}})")), 1);
  EXPECT_EQ(count(must(R"({"key":"tags","values_count":{"gte":1}})")), 3);  // 1, 4, 5
  EXPECT_EQ(count(must(R"({"key":"tags","values_count":{"lt":1}})")), 2);   // 2, 3
  // is_empty: missing, null or []; [null] and {} are not empty.
  EXPECT_EQ(count(must(R"({"is_empty":{"key":"tags"}})")), 2);
  EXPECT_EQ(count(must(R"({"key":"tags","is_empty":true})")), 2);
  EXPECT_EQ(count(must(R"({"key":"tags","is_empty":false})")), 3);
  EXPECT_EQ(count(must(R"({"is_empty":{"key":"obj"}})")), 4);
  // is_null: null, or an array holding null.
  EXPECT_EQ(count(must(R"({"is_null":{"key":"tags"}})")), 2);
  EXPECT_EQ(count(must(R"({"key":"tags","is_null":false})")), 3);
  // min_should is a clause of its own beside should, not merged into it.
  EXPECT_EQ(count(R"({"should":[{"has_id":[1]}],
                      "min_should":{"conditions":[{"has_id":[2]},{"has_id":[1]}],"min_count":2}})"),
            0);
  EXPECT_EQ(count(R"({"should":[{"has_id":[1,2]}],
                      "min_should":{"conditions":[{"has_id":[2,3]},{"has_id":[2]}],"min_count":2}})"),
            1);
  EXPECT_EQ(count(R"({"min_should":{"conditions":[{"has_id":[1]}],"min_count":0}})"), 5);
}

// A field qvec does not implement is refused, naming its path; it is never
// ignored.
TEST_F(RouterTest, UnsupportedFieldsAreRefusedByPath) {
  CreateDemo();
  struct Case {
    const char* method;
    const char* target;
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {"POST", "/collections/demo/points/query",
       R"({"query":[1,0,0,0],"prefetch":{"query":[1,0,0,0],"offset":1}})",
       "prefetch.offset: not supported by qvec"},
      {"POST", "/collections/demo/points/query", R"({"query":{"nearest":[1,0,0,0],"mmr":{"lambda":0.5}}})",
       "query.mmr.lambda: not supported by qvec"},
      {"POST", "/collections/demo/points/query",
       R"({"prefetch":{"query":[1,0,0,0]},"query":{"formula":{"sum":["$score",{"nope":1}]}}})",
       "query.formula.sum[1].nope"},
      {"POST", "/collections/demo/points/query", R"({"query":{"recommend":{"positive":[1],"p":1}}})",
       "query.recommend.p: not supported by qvec"},
      {"POST", "/collections/demo/points/scroll", R"({"order_by":"n"})", "order_by"},
      {"PUT", "/collections/demo/points/payload", R"({"payload":{"a":1},"points":[1],"key":"m[0]"})",
       "key 'm[0]': array indexes in paths are not supported yet"},
      {"POST", "/collections/demo/points/count",
       R"({"filter":{"must":[{"key":"city","match":{"value":"Berlin"}},{"has_vector":"x"}]}})",
       "has_vector: the collection has no vector field 'x'"},
      {"POST", "/collections/demo/points/count",
       R"({"filter":{"should":{"key":"city","match":{"value":"Berlin","text":"B"}}}})",
       "filter.should.match: expected exactly one of"},
      {"POST", "/collections/demo/points/search",
       R"({"vector":[1,0,0,0],"params":{"hnsw_ef":64,"quantisation":{}}})",
       "params.quantisation: not supported by qvec"},
      {"PATCH", "/collections/demo", R"({"quantization_config":"Disabled"})",
       "is not supported (qvec always scores int8 codes"},
      {"PATCH", "/collections/demo", R"({"quantization_config":{"product":{"compression":"x4"}}})",
       "quantization_config.product"},
      {"PATCH", "/collections/demo", R"({"vectors":{"text":{"on_disk":true}}})",
       "vectors.text: the collection has no such vector field"},
      {"PUT", "/collections/demo/index", R"({"field_name":"city","field_schema":"point"})",
       "field_schema: payload index type must be keyword"},
      {"POST", "/collections/demo/points/count?timeout=1&verbose=1", "{}",
       "query parameter verbose: not supported by qvec"},
  };
  for (const Case& c : cases) {
    auto r = Call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, 400u) << c.target << " " << c.body << " -> " << r.body;
    EXPECT_THAT(r.body, HasSubstr(c.message)) << c.body;
  }
  // The refused requests changed nothing.
  auto r = Call("POST", "/collections/demo/points", R"({"ids":[1]})");
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"city":"Berlin","n":1})"));
  // Tuning-only fields and nulls pass.
  r = Call("PATCH", "/collections/demo", R"({"optimizers_config":{"indexing_threshold":0},
                                            "params":{"replication_factor":1},
                                            "vectors":{"":{"hnsw_config":{"m":0}}}})");
  EXPECT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points/search",
           R"({"vector":[1,0,0,0],"limit":1,"shard_key":null,"params":{"hnsw_ef":16}})");
  EXPECT_EQ(r.status, 200u) << r.body;
}

// PATCH changes what qvec has: quantization (re-encoded in the background,
// the codes' quantization shown apart until then) and index options.
TEST_F(RouterTest, PatchCollectionChangesQuantizationAndIndexOptions) {
  CreateDemo();
  auto r = Call("PATCH", "/collections/demo",
                R"({"quantization_config":{"scalar":{"type":"int8","quantile":0.99}},
                    "qvec":{"index":{"default_nprobe":3,"ivf_threshold":50000}}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  std::string info;
  for (int i = 0; i < 300; ++i) {
    info = Call("GET", "/collections/demo").body;
    if (info.find(R"("rebuild_pending":false)") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(info, HasSubstr(R"("quantile":0.99)"));
  EXPECT_THAT(info, HasSubstr(R"("rebuild_pending":false)"));
  EXPECT_THAT(info, HasSubstr(R"("codes_quantization":{"type":"int8","granularity":"per_dimension","quantile":0.99)"));
  EXPECT_THAT(info, HasSubstr(R"("default_nprobe":3)"));
  EXPECT_THAT(info, HasSubstr(R"("ivf_threshold":50000)"));
  // Searches still answer.
  r = Call("POST", "/collections/demo/points/search", R"({"vector":[1,0,0,0],"limit":1})");
  EXPECT_EQ(r.status, 200u) << r.body;
  // Size and distance are not options; values out of range are refused.
  r = Call("PATCH", "/collections/demo", R"({"vectors":{"":{"size":8}}})");
  EXPECT_EQ(r.status, 400u) << r.body;
  r = Call("PATCH", "/collections/demo", R"({"qvec":{"index":{"default_target_recall":2}}})");
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("default_target_recall"));
  EXPECT_THAT(Call("GET", "/collections/demo").body, HasSubstr(R"("default_nprobe":3)"));
  // The 4-bit first pass: a known kind is kept, an unknown one named.
  r = Call("PATCH", "/collections/demo", R"({"qvec":{"index":{"first_pass":"pq8"}}})");
  EXPECT_GE(r.status, 400u) << r.body;
  EXPECT_LT(r.status, 500u) << r.body;
  EXPECT_THAT(r.body, HasSubstr("first_pass"));
  r = Call("PATCH", "/collections/demo", R"({"qvec":{"index":{"first_pass":"pq4"}}})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(Call("GET", "/collections/demo").body, HasSubstr(R"("first_pass":"pq4")"));
}

TEST_F(RouterTest, PayloadAndVectorOperations) {
  CreateDemo();
  auto payload_of = [&](int id) {
    auto r = Call("POST", "/collections/demo/points", "{\"ids\":[" + std::to_string(id) + "]}");
    EXPECT_EQ(r.status, 200u) << r.body;
    return simdjson::to_string(Json(r)["result"].at(0)["payload"]);
  };
  // Merge under a nested key, creating the objects along it.
  auto r = Call("POST", "/collections/demo/points/payload",
                R"({"payload":{"color":"red"},"points":[1],"key":"meta.style"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(1), R"({"city":"Berlin","n":1,"meta":{"style":{"color":"red"}}})");
  r = Call("POST", "/collections/demo/points/payload",
           R"({"payload":{"size":2},"points":[1],"key":"meta.style"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(1), R"({"city":"Berlin","n":1,"meta":{"style":{"color":"red","size":2}}})");
  // Delete a nested key and a top-level one; absent keys are ignored.
  r = Call("POST", "/collections/demo/points/payload/delete",
           R"({"keys":["meta.style.color","n","nope.x"],"points":[1]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(1), R"({"city":"Berlin","meta":{"style":{"size":2}}})");
  // Set by filter: only the matching points change.
  r = Call("POST", "/collections/demo/points/payload",
           R"({"payload":{"big":true},"filter":{"must":[{"key":"n","range":{"gte":2}}]}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(2), R"({"city":"London","n":2,"big":true})");
  EXPECT_EQ(payload_of(1), R"({"city":"Berlin","meta":{"style":{"size":2}}})");
  r = Call("POST", "/collections/demo/points/count",
           R"({"filter":{"must":[{"key":"big","match":{"value":true}}]}})");
  EXPECT_THAT(r.body, HasSubstr(R"("count":2)"));
  // Clear by ids.
  r = Call("POST", "/collections/demo/points/payload/clear", R"({"points":[2]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(2), "{}");
  // Overwrite by filter.
  r = Call("PUT", "/collections/demo/points/payload",
           R"({"payload":{"only":1},"filter":{"must":[{"key":"city","match":{"value":"Berlin"}}]}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(1), R"({"only":1})");
  // Refused requests write nothing.
  for (const char* body : {R"({"payload":{"a":1},"points":[1],"key":"a[0]"})",
                           R"({"payload":{"a":1},"points":[1],"key":"a..b"})",
                           R"({"payload":{"a":1},"points":[1,999]})",
                           R"({"payload":{"a":1},"points":[1],"filter":{}})",
                           R"({"payload":{"a":1}})"}) {
    r = Call("POST", "/collections/demo/points/payload", body);
    EXPECT_GE(r.status, 400u) << body << " -> " << r.body;
  }
  EXPECT_EQ(payload_of(1), R"({"only":1})");
  // Overwrite under a key: the object there is replaced, the rest kept.
  r = Call("POST", "/collections/demo/points/payload",
           R"({"payload":{"x":1,"y":2},"points":[1],"key":"k"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/demo/points/payload", R"({"payload":{"z":3},"points":[1],"key":"k"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(payload_of(1), R"({"only":1,"k":{"z":3}})");

  // Vectors: update the unnamed field of one point, then delete it.
  r = Call("PUT", "/collections/demo/points/vectors", R"({"points":[{"id":2,"vector":[1,0,0,0]}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points/search", R"({"vector":[1,0,0,0],"limit":1})");
  EXPECT_THAT(r.body, HasSubstr(R"("id":2)"));
  r = Call("PUT", "/collections/demo/points/vectors", R"({"points":[{"id":404,"vector":[1,0,0,0]}]})");
  EXPECT_EQ(r.status, 404u) << r.body;
  r = Call("POST", "/collections/demo/points/vectors/delete", R"({"points":[2],"vector":[""]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points", R"({"ids":[2],"with_vector":true})");
  EXPECT_THAT(r.body, HasSubstr(R"("id":2)"));
  r = Call("POST", "/collections/demo/points/search", R"({"vector":[1,0,0,0],"limit":3})");
  EXPECT_THAT(r.body, Not(HasSubstr(R"("id":2,)")));
  // By filter: the points it selects lose the vector, the others keep it.
  r = Call("POST", "/collections/demo/points/vectors/delete",
           R"({"filter":{"must":[{"has_id":[1]}]},"vector":[""]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/demo/points/search", R"({"vector":[1,0,0,0],"limit":3})");
  EXPECT_THAT(r.body, Not(HasSubstr(R"("id":1,)")));
  EXPECT_THAT(r.body, HasSubstr(R"("id":"5c56c793)"));
  r = Call("POST", "/collections/demo/points/vectors/delete",
           R"({"points":[3],"filter":{"must":[]},"vector":[""]})");
  EXPECT_EQ(r.status, 400u);
  r = Call("POST", "/collections/demo/points/vectors/delete", R"({"vector":[""]})");
  EXPECT_EQ(r.status, 400u);
}

TEST_F(RouterTest, PayloadIndexes) {
  CreateDemo();
  auto r = Call("PUT", "/collections/demo/index?wait=true",
                R"({"field_name":"city","field_schema":"keyword"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/demo/index",
           R"({"field_name":"n","field_schema":{"type":"integer","lookup":true,"range":true}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("GET", "/collections/demo");
  ASSERT_EQ(r.status, 200u);
  EXPECT_THAT(r.body, HasSubstr(R"("payload_schema":{"city":{"data_type":"keyword","params":{"type":"keyword"},"points":3},"n":{"data_type":"integer","params":{"type":"integer"},"points":3}})"));
  r = Call("POST", "/collections/demo/points/count",
           R"({"filter":{"must":[{"key":"city","match":{"any":["Berlin","Moscow"]}},{"key":"n","range":{"gt":1}}]}})");
  EXPECT_THAT(r.body, HasSubstr(R"("count":1)"));
  r = Call("POST", "/collections/demo/points/scroll",
           R"({"filter":{"must":[{"key":"n","range":{"gte":2}}]},"limit":1,"with_payload":false})");
  EXPECT_THAT(r.body, HasSubstr(R"("points":[{"id":2,)"));
  EXPECT_THAT(r.body, HasSubstr(R"("next_page_offset":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26")"));
  // Types qvec does not index yet are refused, naming them; nothing changes.
  for (const char* body : {R"({"field_name":"city","field_schema":{"type":"text","tokenizer":"prefix"}})",
                           R"({"field_name":"city","field_schema":{"type":"text","stemmer":{}}})",
                           R"({"field_name":"city","field_schema":{"type":"keyword","tokenizer":"word"}})",
                           R"({"field_name":"city"})",
                           R"({"field_name":"city","field_schema":"words"})"}) {
    r = Call("PUT", "/collections/demo/index", body);
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
  }
  r = Call("PUT", "/collections/demo/index",
           R"({"field_name":"city","field_schema":{"type":"keyword","tokenizer":"word"}})");
  EXPECT_THAT(r.body, HasSubstr("field_schema.tokenizer"));
  r = Call("DELETE", "/collections/demo/index/city?wait=true");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("DELETE", "/collections/demo/index/city");
  EXPECT_EQ(r.status, 404u) << r.body;
  r = Call("GET", "/collections/demo");
  EXPECT_THAT(r.body, HasSubstr(R"("payload_schema":{"n":{)"));
}

TEST_F(RouterTest, Aliases) {
  CreateDemo();
  auto r = Call("PUT", "/collections/other", R"({"vectors":{"size":4,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("POST", "/collections/aliases",
           R"({"actions":[{"create_alias":{"collection_name":"demo","alias_name":"live"}},
                          {"create_alias":{"collection_name":"demo","alias_name":"old"}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  // Every collection endpoint takes the alias.
  r = Call("POST", "/collections/live/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("count":3)"));
  r = Call("GET", "/collections/live");
  EXPECT_EQ(r.status, 200u);
  r = Call("GET", "/aliases");
  EXPECT_THAT(r.body, HasSubstr(R"("aliases":[{"alias_name":"live","collection_name":"demo"},{"alias_name":"old","collection_name":"demo"}])"));
  // Switch atomically; a failing action leaves everything as it was.
  r = Call("POST", "/collections/aliases",
           R"({"actions":[{"delete_alias":{"alias_name":"live"}},
                          {"create_alias":{"collection_name":"other","alias_name":"live"}},
                          {"rename_alias":{"old_alias_name":"old","new_alias_name":"nope"}},
                          {"delete_alias":{"alias_name":"missing"}}]})");
  EXPECT_EQ(r.status, 404u) << r.body;
  r = Call("GET", "/aliases");
  EXPECT_THAT(r.body, HasSubstr(R"({"alias_name":"live","collection_name":"demo"})"));
  EXPECT_THAT(r.body, Not(HasSubstr("nope")));
  r = Call("POST", "/collections/aliases",
           R"({"actions":[{"delete_alias":{"alias_name":"live"}},
                          {"create_alias":{"collection_name":"other","alias_name":"live"}},
                          {"rename_alias":{"old_alias_name":"old","new_alias_name":"previous"}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("POST", "/collections/live/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("count":0)"));
  r = Call("GET", "/collections/demo/aliases");
  EXPECT_THAT(r.body, HasSubstr(R"({"aliases":[{"alias_name":"previous","collection_name":"demo"}]})"));
  // Names are shared with collections; bad actions are refused by name.
  for (const char* body :
       {R"({"actions":[{"create_alias":{"collection_name":"demo","alias_name":"other"}}]})",
        R"({"actions":[{"create_alias":{"collection_name":"demo","alias_name":"previous"}}]})",
        R"({"actions":[{"create_alias":{"collection_name":"ghost","alias_name":"x"}}]})",
        R"({"actions":[{"create_alias":{"collection_name":"demo","alias_name":"a/b"}}]})",
        R"({"actions":[{"create_alias":{"collection_name":"demo"}}]})",
        R"({"actions":[{"create_alias":{"collection_name":"demo","alias_name":"y"},"delete_alias":{"alias_name":"y"}}]})",
        R"({"actions":[{"switch_alias":{}}]})"}) {
    r = Call("POST", "/collections/aliases", body);
    EXPECT_GE(r.status, 400u) << body << " -> " << r.body;
  }
  r = Call("PUT", "/collections/previous", R"({"vectors":{"size":4,"distance":"Dot"}})");
  EXPECT_EQ(r.status, 409u) << r.body;
  r = Call("DELETE", "/collections/previous");
  EXPECT_EQ(r.status, 400u) << r.body;
  // Dropping a collection removes its aliases.
  r = Call("DELETE", "/collections/demo");
  ASSERT_EQ(r.status, 200u);
  r = Call("GET", "/aliases");
  EXPECT_THAT(r.body, HasSubstr(R"({"aliases":[{"alias_name":"live","collection_name":"other"}]})"));
}

TEST_F(RouterTest, UpdateBatchAppliesOperationsInOrder) {
  CreateDemo();
  auto r = Call("POST", "/collections/demo/points/batch", R"({"operations":[
      {"upsert":{"points":[{"id":7,"vector":[1,0,0,0],"payload":{"city":"Oslo"}}]}},
      {"set_payload":{"payload":{"big":true},"points":[7,1]}},
      {"overwrite_payload":{"payload":{"city":"Bergen"},"points":[7]}},
      {"delete_payload":{"keys":["n"],"filter":{"must":[{"key":"city","match":{"value":"Berlin"}}]}}},
      {"clear_payload":{"points":[2]}},
      {"update_vectors":{"points":[{"id":2,"vector":[0,1,0,0]}]}},
      {"delete":{"points":["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("result":[{"operation_id":0,"status":"completed"},)"));
  r = Call("POST", "/collections/demo/points", R"({"ids":[7,1,2]})");
  EXPECT_THAT(r.body, HasSubstr(R"("id":7,"payload":{"city":"Bergen"})"));
  EXPECT_THAT(r.body, HasSubstr(R"("id":1,"payload":{"city":"Berlin","big":true})"));
  EXPECT_THAT(r.body, HasSubstr(R"("id":2,"payload":{})"));
  r = Call("POST", "/collections/demo/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("count":3)"));
  // A malformed operation anywhere: nothing is applied.
  r = Call("POST", "/collections/demo/points/batch", R"({"operations":[
      {"delete":{"points":[7]}},
      {"set_payload":{"payload":{"a":1},"points":[1],"shard_key":"x"}}]})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("operations[1].set_payload: shard_key"));
  r = Call("POST", "/collections/demo/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("count":3)"));
  // One failing when applied: the earlier ones stay (as in Qdrant), named.
  r = Call("POST", "/collections/demo/points/batch", R"({"operations":[
      {"delete":{"points":[7]}},
      {"set_payload":{"payload":{"a":1},"points":[404]}}]})");
  EXPECT_EQ(r.status, 404u);
  EXPECT_THAT(r.body, HasSubstr("operations[1].set_payload (operations[0..0] were applied)"));
  r = Call("POST", "/collections/demo/points/count", "{}");
  EXPECT_THAT(r.body, HasSubstr(R"("count":2)"));
  r = Call("POST", "/collections/demo/points/batch", R"({"operations":[{"upsert":{},"delete":{}}]})");
  EXPECT_EQ(r.status, 400u);
}

TEST_F(RouterTest, ScrollOrderBy) {
  auto r = Call("PUT", "/collections/o", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/o/points", R"({"points":[
    {"id":1,"vector":[1,0],"payload":{"price":30,"tag":"a"}},
    {"id":2,"vector":[1,0],"payload":{"price":10.5,"tag":"b"}},
    {"id":3,"vector":[1,0],"payload":{"price":[20,40],"tag":"a"}},
    {"id":4,"vector":[1,0],"payload":{"price":10.5,"tag":"a"}},
    {"id":5,"vector":[1,0],"payload":{"tag":"a"}}]})");
  ASSERT_EQ(r.status, 200u);
  // Without a range index on the key: refused, naming it.
  r = Call("POST", "/collections/o/points/scroll", R"({"order_by":"price"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("supported only with an integer, float or datetime payload index"));
  r = Call("PUT", "/collections/o/index", R"({"field_name":"price","field_schema":"float"})");
  ASSERT_EQ(r.status, 200u);
  auto ids = [&](const std::string& body) {
    auto resp = Call("POST", "/collections/o/points/scroll", body);
    EXPECT_EQ(resp.status, 200u) << body << " -> " << resp.body;
    std::string out;
    simdjson::dom::element doc = Json(resp);
    for (auto p : doc["result"]["points"].get_array()) {
      out += std::to_string(uint64_t(p["id"])) + ":" + simdjson::to_string(p["order_value"]) + " ";
    }
    EXPECT_TRUE(doc["result"]["next_page_offset"].is_null());
    return out;
  };
  // A point appears once per value; equal values by id.
  EXPECT_EQ(ids(R"({"order_by":"price","with_payload":false})"),
            "2:10.5 4:10.5 3:20 1:30 3:40 ");
  EXPECT_EQ(ids(R"({"order_by":{"key":"price","direction":"desc"},"limit":3})"), "3:40 1:30 3:20 ");
  EXPECT_EQ(ids(R"({"order_by":{"key":"price","start_from":20},"filter":{"must":[{"key":"tag","match":{"value":"a"}}]}})"),
            "3:20 1:30 3:40 ");
  EXPECT_EQ(ids(R"({"order_by":{"key":"price","direction":"desc","start_from":20}})"),
            "3:20 2:10.5 4:10.5 ");
  r = Call("POST", "/collections/o/points/scroll", R"({"order_by":"price","offset":2})");
  EXPECT_EQ(r.status, 400u);
  r = Call("POST", "/collections/o/points/scroll", R"({"order_by":{"key":"price","direction":"up"}})");
  EXPECT_EQ(r.status, 400u);
  // On a datetime index: in time order (zones honoured), start_from a
  // date-time string; the order value is microseconds since the epoch.
  r = Call("PUT", "/collections/o/points/payload", R"({"points":[1],"payload":{"at":"2024-03-01T10:00:00Z"}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/o/points/payload", R"({"points":[2],"payload":{"at":"2024-03-01T09:30:00-01:00"}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/o/points/payload", R"({"points":[3],"payload":{"at":"2023-12-31"}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/o/index", R"({"field_name":"at","field_schema":"datetime"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(ids(R"({"order_by":"at"})"),
            "3:1703980800000000 1:1709287200000000 2:1709289000000000 ");
  EXPECT_EQ(ids(R"({"order_by":{"key":"at","direction":"desc","start_from":"2024-03-01T10:00:00Z"}})"),
            "1:1709287200000000 3:1703980800000000 ");
  EXPECT_EQ(ids(R"({"order_by":{"key":"at","start_from":1709287200000001}})"), "2:1709289000000000 ");
  r = Call("POST", "/collections/o/points/scroll",
           R"({"order_by":{"key":"price","start_from":"2024-03-01T10:00:00Z"}})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("a date-time is supported only with a datetime payload index"));
  r = Call("POST", "/collections/o/points/scroll",
           R"({"order_by":{"key":"at","start_from":"yesterday"}})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_THAT(r.body, HasSubstr("not an RFC 3339 date-time"));
}

TEST_F(RouterTest, Telemetry) {
  CreateDemo();
  auto r = Call("GET", "/telemetry");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = Json(r);
  EXPECT_EQ(std::string_view(doc["result"]["app"]["name"]), "qvec");
  EXPECT_EQ(uint64_t(doc["result"]["collections"]["number_of_collections"]), 1u);
  EXPECT_EQ(std::string_view(doc["result"]["id"]).size(), 36u);
  EXPECT_THAT(r.body, HasSubstr(R"("PUT /collections/{name}/points":{"200":{"count":1})"));
  r = Call("GET", "/telemetry?details_level=2");
  EXPECT_THAT(r.body, HasSubstr(R"({"id":"demo","points_count":3,"vector_fields":1})"));
  r = Call("GET", "/telemetry?details_level=2&anonymize=true");
  EXPECT_THAT(r.body, Not(HasSubstr(R"("id":"demo")")));
  EXPECT_THAT(r.body, HasSubstr(R"("points_count":3)"));
  EXPECT_EQ(Call("GET", "/telemetry?details_level=high").status, 400u);
  EXPECT_EQ(Call("GET", "/livez").status, 200u);
}

// MMR as Qdrant defines it: the nearest first, then relevance against
// redundancy with what is picked; scores stay the query scores.
TEST_F(RouterTest, QueryWithMmr) {
  auto r = Call("PUT", "/collections/m", R"({"vectors":{"size":2,"distance":"Cosine"}})");
  ASSERT_EQ(r.status, 200u);
  // Three near-duplicates close to the query, and two different directions.
  r = Call("PUT", "/collections/m/points", R"({"points":[
    {"id":1,"vector":[1,0.00]},{"id":2,"vector":[1,0.01]},{"id":3,"vector":[1,0.02]},
    {"id":4,"vector":[0.6,0.8]},{"id":5,"vector":[0,1]}]})");
  ASSERT_EQ(r.status, 200u);
  auto ids = [&](const std::string& body) {
    auto resp = Call("POST", "/collections/m/points/query", body);
    EXPECT_EQ(resp.status, 200u) << body << " -> " << resp.body;
    std::string out;
    for (auto p : Json(resp)["result"]["points"].get_array()) {
      out += std::to_string(uint64_t(p["id"])) + " ";
      EXPECT_TRUE(p["vector"].is_null()) << body;
    }
    return out;
  };
  EXPECT_EQ(ids(R"({"query":[1,0],"limit":3})"), "1 2 3 ");
  EXPECT_EQ(ids(R"({"query":{"nearest":[1,0],"mmr":{"diversity":0,"candidates_limit":5}},"limit":3})"),
            "1 2 3 ");
  EXPECT_EQ(ids(R"({"query":{"nearest":[1,0],"mmr":{"diversity":0.9,"candidates_limit":5}},"limit":3})"),
            "1 5 4 ");
  // Default candidates_limit = limit: only reorders the nearest.
  EXPECT_EQ(ids(R"({"query":{"nearest":[1,0],"mmr":{"diversity":0.9}},"limit":3})"), "1 3 2 ");
  r = Call("POST", "/collections/m/points/query",
           R"({"query":{"nearest":[1,0],"mmr":{"diversity":0.9,"candidates_limit":5}},"limit":2,"with_vector":true})");
  EXPECT_THAT(r.body, HasSubstr(R"("vector":[)"));
  r = Call("POST", "/collections/m/points/query",
           R"({"query":{"nearest":[1,0],"mmr":{"diversity":1.5}}})");
  EXPECT_EQ(r.status, 422u) << r.body;
  r = Call("POST", "/collections/m/points/query",
           R"({"query":{"nearest":[1,0],"mmr":{"diversity":0.5,"candidates_limit":2}},"limit":3})");
  EXPECT_EQ(r.status, 422u) << r.body;
  r = Call("POST", "/collections/m/points/query/batch",
           R"({"searches":[{"query":{"nearest":[1,0],"mmr":{"diversity":0.9,"candidates_limit":5}},"limit":3},{"query":[1,0],"limit":1}]})");
  EXPECT_THAT(r.body, HasSubstr(R"("id":5)"));
}

TEST_F(RouterTest, GeoAndDatetimeFilters) {
  auto r = Call("PUT", "/collections/g", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/g/points", R"({"points":[
    {"id":1,"vector":[1,0],"payload":{"loc":{"lon":13.404954,"lat":52.520008},"at":"2024-03-01T10:00:00Z"}},
    {"id":2,"vector":[1,0],"payload":{"loc":{"lon":-0.1276,"lat":51.5072},"at":"2024-03-01T11:30:00+02:00"}},
    {"id":3,"vector":[1,0],"payload":{"loc":[{"lon":37.6173,"lat":55.7558},{"lon":13.45,"lat":52.5}],"at":"2024-03-02"}},
    {"id":4,"vector":[1,0],"payload":{"loc":{"lon":179.5,"lat":0},"at":"2024-02-29 23:59:59.999"}},
    {"id":5,"vector":[1,0],"payload":{"loc":"nowhere","at":"not a date"}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto count = [&](const std::string& cond) { return CountIn("g", Must(cond)); };
  // 10 km around Berlin: point 1, and point 3 by its second location.
  EXPECT_EQ(count(R"({"key":"loc","geo_radius":{"center":{"lon":13.4,"lat":52.52},"radius":10000}})"), 2);
  EXPECT_EQ(count(R"({"key":"loc","geo_radius":{"center":{"lon":13.4,"lat":52.52},"radius":1000}})"), 1);
  // Western Europe; and a box across the antimeridian.
  EXPECT_EQ(count(R"({"key":"loc","geo_bounding_box":{"top_left":{"lon":-5,"lat":56},"bottom_right":{"lon":15,"lat":50}}})"), 3);
  EXPECT_EQ(count(R"({"key":"loc","geo_bounding_box":{"top_left":{"lon":170,"lat":10},"bottom_right":{"lon":-170,"lat":-10}}})"), 1);
  // A polygon around Germany with a hole around Berlin.
  const std::string ring = R"({"points":[{"lon":5,"lat":47},{"lon":15,"lat":47},{"lon":15,"lat":55},{"lon":5,"lat":55},{"lon":5,"lat":47}]})";
  const std::string hole = R"({"points":[{"lon":13.3,"lat":52.4},{"lon":13.42,"lat":52.4},{"lon":13.42,"lat":52.6},{"lon":13.3,"lat":52.6},{"lon":13.3,"lat":52.4}]})";
  EXPECT_EQ(count(R"({"key":"loc","geo_polygon":{"exterior":)" + ring + "}}"), 2);
  EXPECT_EQ(count(R"({"key":"loc","geo_polygon":{"exterior":)" + ring + R"(,"interiors":[)" + hole + "]}}"), 1);
  // Datetime ranges (RFC 3339, zones honoured; 11:30+02:00 is 09:30Z).
  EXPECT_EQ(count(R"({"key":"at","range":{"gte":"2024-03-01T09:45:00Z"}})"), 2);
  EXPECT_EQ(count(R"({"key":"at","range":{"lt":"2024-03-01T10:00:00Z"}})"), 2);
  EXPECT_EQ(count(R"({"key":"at","range":{"gt":"2024-02-29","lte":"2024-03-01T10:00:00Z"}})"), 3);
  // Bad geo and datetime input is refused, naming the field.
  for (const char* cond :
       {R"({"key":"loc","geo_radius":{"center":{"lon":200,"lat":0},"radius":1}})",
        R"({"key":"loc","geo_radius":{"center":{"lon":0,"lat":0}}})",
        R"({"key":"loc","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":0,"lat":0}]}}})",
        R"({"key":"at","range":{"gt":"yesterday"}})",
        R"({"key":"at","range":{"gt":"2024-02-30"}})",
        R"({"key":"at","range":{"gt":"2024-01-01","lt":5}})"}) {
    std::string body = R"({"filter":{"must":[)";
    body += cond;
    body += "]}}";
    auto resp = Call("POST", "/collections/g/points/count", body);
    EXPECT_GE(resp.status, 400u) << cond << " -> " << resp.body;
  }
}

// nested: the inner filter holds for one object of the array on its own.
TEST_F(RouterTest, NestedFilter) {
  auto r = Call("PUT", "/collections/n", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/n/points", R"({"points":[
    {"id":1,"vector":[1,0],"payload":{"items":[{"a":1,"b":"x"},{"a":2,"b":"y"}]}},
    {"id":2,"vector":[1,0],"payload":{"items":[{"a":1,"b":"y"}]}},
    {"id":3,"vector":[1,0],"payload":{"items":{"a":1,"b":"y"}}},
    {"id":4,"vector":[1,0],"payload":{"items":[]}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto count = [&](const std::string& filter) { return CountIn("n", filter); };
  // Across elements (plain keys) point 1 matches; within one element it does not.
  EXPECT_EQ(count(R"({"must":[{"key":"items[].a","match":{"value":1}},{"key":"items[].b","match":{"value":"y"}}]})"), 3);
  EXPECT_EQ(count(R"({"must":[{"nested":{"key":"items","filter":{"must":[{"key":"a","match":{"value":1}},{"key":"b","match":{"value":"y"}}]}}}]})"), 2);
  EXPECT_EQ(count(R"({"must":[{"nested":{"key":"items[]","filter":{"must":[{"key":"a","range":{"gte":2}}]}}}]})"), 1);
  EXPECT_EQ(count(R"({"must_not":[{"nested":{"key":"items","filter":{"must":[{"key":"b","match":{"value":"x"}}]}}}]})"), 3);
  r = Call("POST", "/collections/n/points/count",
           R"({"filter":{"must":[{"nested":{"key":"items","filter":{"must":[{"has_id":[1]}]}}}]}})");
  EXPECT_EQ(r.status, 400u);
  r = Call("POST", "/collections/n/points/count",
           R"({"filter":{"must":[{"nested":{"key":"items"}}]}})");
  EXPECT_EQ(r.status, 400u);
}

// A text index switches match.text / text_any / phrase from substrings to
// lowercased words; a datetime index answers datetime ranges.
TEST_F(RouterTest, TextAndDatetimeIndexes) {
  auto r = Call("PUT", "/collections/t", R"({"vectors":{"size":2,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/t/points", R"({"points":[
    {"id":1,"vector":[1,0],"payload":{"body":"The Quick brown fox","at":"2024-01-01T00:00:00Z"}},
    {"id":2,"vector":[1,0],"payload":{"body":"quickly, brown foxes!","at":"2024-06-01"}},
    {"id":3,"vector":[1,0],"payload":{"body":["lazy dog","brown fox quick"],"at":"2025-01-01 12:00"}}]})");
  ASSERT_EQ(r.status, 200u);
  auto count = [&](const std::string& cond) { return CountIn("t", Must(cond)); };
  const std::string quick_fox = R"({"key":"body","match":{"text":"quick fox"}})";
  const std::string phrase = R"({"key":"body","match":{"phrase":"brown fox"}})";
  const std::string any = R"({"key":"body","match":{"text_any":"lazy foxes"}})";
  const std::string range = R"({"key":"at","range":{"gte":"2024-03-01T00:00:00Z"}})";
  // Without indexes: case-sensitive substrings.
  EXPECT_EQ(count(quick_fox), 0);
  EXPECT_EQ(count(R"({"key":"body","match":{"text":"brown fox"}})"), 3);
  EXPECT_EQ(count(phrase), 3);
  EXPECT_EQ(count(any), 2);
  EXPECT_EQ(count(range), 2);
  r = Call("PUT", "/collections/t/index",
           R"({"field_name":"body","field_schema":{"type":"text","tokenizer":"word","lowercase":true,"phrase_matching":true}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  r = Call("PUT", "/collections/t/index", R"({"field_name":"at","field_schema":"datetime"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  // With them: words, lowercased; "quickly" and "foxes" are other words.
  EXPECT_EQ(count(quick_fox), 2);
  EXPECT_EQ(count(phrase), 2);
  EXPECT_EQ(count(R"({"key":"body","match":{"phrase":"fox brown"}})"), 0);
  EXPECT_EQ(count(any), 2);
  EXPECT_EQ(count(range), 2);
  EXPECT_EQ(count(R"({"key":"at","range":{"gt":"2024-01-01T00:00:00Z","lt":"2025-01-01T12:00:00Z"}})"), 1);
  r = Call("GET", "/collections/t");
  EXPECT_THAT(r.body, HasSubstr(R"("body":{"data_type":"text","params":{"type":"text"},"points":3})"));
  EXPECT_THAT(r.body, HasSubstr(R"("at":{"data_type":"datetime","params":{"type":"datetime"},"points":3})"));
  // Writes keep them current.
  r = Call("POST", "/collections/t/points/payload", R"({"payload":{"body":"slow fox"},"points":[1]})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(count(quick_fox), 1);
}

TEST_F(RouterTest, HasVectorFilter) {
  auto r = Call("PUT", "/collections/hv",
                R"({"vectors":{"text":{"size":2,"distance":"Dot"},"image":{"size":2,"distance":"Dot"}}})");
  ASSERT_EQ(r.status, 200u);
  r = Call("PUT", "/collections/hv/points", R"({"points":[
    {"id":1,"vector":{"text":[1,0],"image":[0,1]}},{"id":2,"vector":{"text":[1,0]}},
    {"id":3,"vector":{"image":[1,1]}}]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto count = [&](const std::string& filter) { return CountIn("hv", filter); };
  EXPECT_EQ(count(R"({"must":[{"has_vector":"image"}]})"), 2);
  EXPECT_EQ(count(R"({"must_not":[{"has_vector":"image"}]})"), 1);
  r = Call("POST", "/collections/hv/points/vectors/delete", R"({"points":[1],"vector":["image"]})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(count(R"({"must":[{"has_vector":"image"}]})"), 1);
  r = Call("POST", "/collections/hv/points/count", R"({"filter":{"must":[{"has_vector":"audio"}]}})");
  EXPECT_EQ(r.status, 400u) << r.body;
}

}  // namespace
}  // namespace qvec::server
