// Bad input over the real server socket: each case must get a 4xx with a JSON
// error body ({"status":{"error":"..."}}), the server must keep serving, and
// the stored data must be unchanged (a full scroll before and after).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::HttpCall;
using testing_util::HttpResult;
using testing_util::ScrollAll;
using testing_util::ServerProcess;
using testing_util::TempDir;

// Sends raw bytes on a fresh connection and reads until the server closes it
// (or `timeout_ms`); returns the status code of the first response.
HttpResult RawCall(int port, const std::string& bytes, int timeout_ms = 10000) {
  HttpResult result;
  const int fd = testing_util::ConnectLoopback(port, timeout_ms);
  if (fd < 0) return result;
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (int i = 0; i < 10000; ++i) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    size_t he = raw.find("\r\n\r\n");
    if (he != std::string::npos) {
      size_t cl = raw.find("Content-Length: ");
      if (cl != std::string::npos && cl < he &&
          raw.size() >= he + 4 + std::stoul(raw.substr(cl + 16))) {
        break;
      }
    }
  }
  close(fd);
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || raw.size() < 12) return result;
  result.status = std::stoi(raw.substr(9, 3));
  size_t he = raw.find("\r\n\r\n");
  if (he != std::string::npos) result.body = raw.substr(he + 4);
  return result;
}

struct Case {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::string> headers;
  int want;  // exact status, or 4 for "any 4xx"
};

std::string Nested(int depth, const std::string& open, const std::string& close,
                   const std::string& inner) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

std::string NestedFilter(int depth) {
  std::string f = R"({"key":"city","match":{"value":"x"}})";
  for (int i = 0; i < depth; ++i) f = R"({"must":[)" + f + "]}";
  return f;
}

std::vector<Case> Cases() {
  const std::string pts = "/collections/c/points?wait=true";
  const std::string search = "/collections/c/points/search";
  const std::string ok_point = R"({"id":1,"vector":[1,2,3,4]})";
  const std::string json = "Content-Type: application/json";
  std::vector<Case> c = {
      // Malformed JSON.
      {"truncated JSON", "PUT", pts, R"({"points":[)", {}, 400},
      {"not an object", "PUT", pts, "[1,2,3]", {}, 400},
      {"trailing garbage", "PUT", pts, R"({"points":[]} x)", {}, 400},
      {"single quotes", "POST", search, "{'vector':[1,2,3,4]}", {}, 400},
      {"unterminated string", "POST", search, R"({"vector":[1,2,3,4],"x":"abc)", {}, 400},
      {"control char in string", "POST", search, "{\"vector\":[1,2,3,4],\"x\":\"a\x01\"}", {}, 400},
      {"deeply nested arrays",
       "PUT",
       pts,
       R"({"points":[{"id":1,"vector":[1,2,3,4],"payload":{"a":)" + Nested(5000, "[", "]", "1") +
           "}}]}",
       {},
       400},
      {"deeply nested objects",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"x":)" + Nested(100, R"({"a":)", "}", "1") + "}",
       {},
       400},
      {"filter nested beyond 16",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"filter":)" + NestedFilter(20) + "}",
       {},
       400},
      // Numbers.
      {"NaN literal", "PUT", pts, R"({"points":[{"id":1,"vector":[NaN,1,1,1]}]})", {}, 400},
      {"Infinity literal",
       "PUT",
       pts,
       R"({"points":[{"id":1,"vector":[Infinity,1,1,1]}]})",
       {},
       400},
      {"beyond float range", "PUT", pts, R"({"points":[{"id":1,"vector":[1e39,1,1,1]}]})", {}, 400},
      {"beyond double range",
       "PUT",
       pts,
       R"({"points":[{"id":1,"vector":[1e400,1,1,1]}]})",
       {},
       400},
      {"negative beyond float range in search",
       "POST",
       search,
       R"({"vector":[-3.5e38,1,1,1]})",
       {},
       400},
      // Beyond float range in a float field other than a vector: converted
      // to infinity (a double -> float cast out of range is undefined
      // behaviour) and rejected.
      {"score_threshold beyond float range",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"score_threshold":1e300})",
       {},
       400},
      {"negative score_threshold beyond float range",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"score_threshold":-1e300})",
       {},
       400},
      // Vectors.
      {"wrong dimension upsert", "PUT", pts, R"({"points":[{"id":1,"vector":[1,2,3]}]})", {}, 4},
      {"wrong dimension search", "POST", search, R"({"vector":[1,2,3,4,5]})", {}, 4},
      {"zero vector under Cosine",
       "PUT",
       "/collections/cos/points?wait=true",
       R"({"points":[{"id":1,"vector":[0,0,0,0]}]})",
       {},
       4},
      {"zero query under Cosine",
       "POST",
       "/collections/cos/points/search",
       R"({"vector":[0,0,0,0]})",
       {},
       4},
      {"empty vector", "PUT", pts, R"({"points":[{"id":1,"vector":[]}]})", {}, 400},
      {"vector is a string", "PUT", pts, R"({"points":[{"id":1,"vector":"1,2,3,4"}]})", {}, 400},
      {"vector of strings", "POST", search, R"({"vector":["1","2","3","4"]})", {}, 400},
      {"vector of nulls", "POST", search, R"({"vector":[null,null,null,null]})", {}, 400},
      {"one bad point rejects the batch",
       "PUT",
       pts,
       R"({"points":[{"id":900,"vector":[1,2,3,4]},{"id":901,"vector":[1,2,3]}]})",
       {},
       4},
      // Ids.
      {"negative id", "PUT", pts, R"({"points":[{"id":-1,"vector":[1,2,3,4]}]})", {}, 400},
      {"float id", "PUT", pts, R"({"points":[{"id":1.5,"vector":[1,2,3,4]}]})", {}, 400},
      {"id beyond u64",
       "PUT",
       pts,
       R"({"points":[{"id":18446744073709551616,"vector":[1,2,3,4]}]})",
       {},
       400},
      {"malformed UUID",
       "PUT",
       pts,
       R"({"points":[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c2","vector":[1,2,3,4]}]})",
       {},
       400},
      {"UUID with bad hex",
       "PUT",
       pts,
       R"({"points":[{"id":"zc56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":[1,2,3,4]}]})",
       {},
       400},
      {"boolean id", "PUT", pts, R"({"points":[{"id":true,"vector":[1,2,3,4]}]})", {}, 400},
      {"missing id", "PUT", pts, R"({"points":[{"vector":[1,2,3,4]}]})", {}, 400},
      {"negative id in path", "GET", "/collections/c/points/-1", "", {}, 400},
      {"huge id in path", "GET", "/collections/c/points/99999999999999999999999", "", {}, 400},
      {"id beyond u64 in path", "GET", "/collections/c/points/18446744073709551616", "", {}, 400},
      {"garbage id in path", "GET", "/collections/c/points/abc", "", {}, 400},
      {"bad id in delete",
       "POST",
       "/collections/c/points/delete?wait=true",
       R"({"points":[1,"nope"]})",
       {},
       400},
      {"bad id in retrieve", "POST", "/collections/c/points", R"({"ids":[-5]})", {}, 400},
      // Wrong types and shapes.
      {"points is an object", "PUT", pts, R"({"points":{"id":1}})", {}, 400},
      {"payload is an array",
       "PUT",
       pts,
       R"({"points":[{"id":1,"vector":[1,2,3,4],"payload":[1,2]}]})",
       {},
       400},
      {"batch length mismatch",
       "PUT",
       pts,
       R"({"batch":{"ids":[1,2],"vectors":[[1,2,3,4]]}})",
       {},
       400},
      {"with_payload is a string",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"with_payload":"yes"})",
       {},
       400},
      {"filter is an array", "POST", search, R"({"vector":[1,2,3,4],"filter":[]})", {}, 400},
      {"match value is a float",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"filter":{"must":[{"key":"city","match":{"value":1.5}}]}})",
       {},
       400},
      {"range bound is a string",
       "POST",
       search,
       R"({"vector":[1,2,3,4],"filter":{"must":[{"key":"n","range":{"gt":"1"}}]}})",
       {},
       400},
      {"delete without points or filter",
       "POST",
       "/collections/c/points/delete?wait=true",
       "{}",
       {},
       400},
      {"set payload to a string",
       "POST",
       "/collections/c/points/payload?wait=true",
       R"({"payload":"x","points":[1]})",
       {},
       400},
      {"collection size 0",
       "PUT",
       "/collections/new1",
       R"({"vectors":{"size":0,"distance":"Dot"}})",
       {},
       422},
      {"collection size negative",
       "PUT",
       "/collections/new2",
       R"({"vectors":{"size":-4,"distance":"Dot"}})",
       {},
       4},
      {"unknown distance",
       "PUT",
       "/collections/new3",
       R"({"vectors":{"size":4,"distance":"Chebyshev"}})",
       {},
       4},
      {"existing collection",
       "PUT",
       "/collections/c",
       R"({"vectors":{"size":4,"distance":"Dot"}})",
       {},
       409},
      // Limits and offsets.
      {"huge limit", "POST", search, R"({"vector":[1,2,3,4],"limit":1000000000})", {}, 422},
      {"huge offset", "POST", search, R"({"vector":[1,2,3,4],"offset":1000000000000})", {}, 422},
      {"negative limit", "POST", search, R"({"vector":[1,2,3,4],"limit":-1})", {}, 4},
      {"limit beyond u64", "POST", search, R"({"vector":[1,2,3,4],"limit":1e30})", {}, 400},
      {"huge scroll limit",
       "POST",
       "/collections/c/points/scroll",
       R"({"limit":1000000000000})",
       {},
       422},
      // Empty bodies.
      {"empty upsert body", "PUT", pts, "", {}, 400},
      {"empty search body", "POST", search, "", {}, 400},
      {"empty create body", "PUT", "/collections/new4", "", {}, 400},
      // Content-Type.
      {"text/plain upsert",
       "PUT",
       pts,
       R"({"points":[)" + ok_point + "]}",
       {"Content-Type: text/plain"},
       415},
      {"form-encoded search",
       "POST",
       search,
       R"({"vector":[1,2,3,4]})",
       {"Content-Type: application/x-www-form-urlencoded"},
       415},
      // Duplicate keys.
      {"duplicate top-level key",
       "PUT",
       pts,
       R"({"points":[{"id":500,"vector":[1,2,3,4]}],"points":[{"id":501,"vector":[1,2,3,4]}]})",
       {},
       400},
      {"duplicate key in a point",
       "PUT",
       pts,
       R"({"points":[{"id":500,"id":501,"vector":[1,2,3,4]}]})",
       {},
       400},
      {"duplicate key in a payload",
       "PUT",
       pts,
       R"({"points":[{"id":500,"vector":[1,2,3,4],"payload":{"a":1,"a":2}}]})",
       {},
       400},
      // Invalid UTF-8 (simdjson validates it while parsing).
      {"invalid UTF-8 in a payload",
       "PUT",
       pts,
       "{\"points\":[{\"id\":500,\"vector\":[1,2,3,4],\"payload\":{\"a\":\"\xff\xfe\"}}]}",
       {},
       400},
      {"overlong UTF-8 in a filter key",
       "POST",
       search,
       "{\"vector\":[1,2,3,4],\"filter\":{\"must\":[{\"key\":\"\xc0\xaf\",\"match\":{\"value\":1}}"
       "]}}",
       {},
       400},
      {"invalid UTF-8 in a collection name",
       "PUT",
       "/collections/%FF%FE",
       R"({"vectors":{"size":4,"distance":"Dot"}})",
       {},
       422},
      {"unknown collection with invalid UTF-8", "GET", "/collections/%FF/points/1", "", {}, 404},
      // Paths.
      {"unknown route", "GET", "/nope", "", {}, 404},
      {"unknown sub-route", "GET", "/collections/c/points/1/extra", "", {}, 404},
      {"unknown collection",
       "POST",
       "/collections/missing/points/search",
       R"({"vector":[1,2,3,4]})",
       {},
       404},
      {"method not allowed", "DELETE", search, "", {}, 405},
      {"method not allowed on metrics", "POST", "/metrics", "{}", {}, 405},
      {"%2F in a collection name",
       "PUT",
       "/collections/a%2Fb",
       R"({"vectors":{"size":4,"distance":"Dot"}})",
       {},
       422},
      {"%2F%2E%2E in a collection name",
       "PUT",
       "/collections/%2E%2E%2Fescape",
       R"({"vectors":{"size":4,"distance":"Dot"}})",
       {},
       422},
      {"dot-dot collection name",
       "PUT",
       "/collections/%2E%2E",
       R"({"vectors":{"size":4,"distance":"Dot"}})",
       {},
       422},
      {"dot-dot path segment", "GET", "/collections/../c", "", {}, 404},
      {"bad percent-escape", "GET", "/collections/%zz", "", {}, 400},
      {"truncated percent-escape", "GET", "/collections/c%2", "", {}, 400},
  };
  (void)json;
  return c;
}

bool IsJsonError(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return false;
  std::string_view error;
  return doc["status"]["error"].get(error) == simdjson::SUCCESS && !error.empty();
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(QVEC_BINARY, dir_.Sub("data"),
                                              std::vector<std::string>{"--max-body-mib", "1"});
    ASSERT_TRUE(server_->Start());
    port_ = server_->port();
    ASSERT_EQ(Call("PUT", "/collections/c", R"({"vectors":{"size":4,"distance":"Dot"}})").status,
              200);
    ASSERT_EQ(
        Call("PUT", "/collections/cos", R"({"vectors":{"size":4,"distance":"Cosine"}})").status,
        200);
    std::string body = R"({"points":[)";
    for (int i = 0; i < 20; ++i) {
      if (i) body += ',';
      body += R"({"id":)" + std::to_string(i) + R"(,"vector":[)" + std::to_string(i + 1) +
              ",0.5,-1," + std::to_string(i % 3) + R"(],"payload":{"city":"c)" +
              std::to_string(i % 4) + R"(","n":)" + std::to_string(i) + "}}";
    }
    body += "]}";
    ASSERT_EQ(Call("PUT", "/collections/c/points?wait=true", body).status, 200);
    ASSERT_EQ(Call("PUT", "/collections/cos/points?wait=true", body).status, 200);
  }

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "", const std::vector<std::string>& headers = {}) {
    return HttpCall(port_, method, target, body, headers, 10000);
  }

  std::string Snapshot() {
    std::string out;
    for (const char* coll : {"c", "cos"}) {
      std::string error;
      auto all = ScrollAll(port_, coll, &error);
      if (!all) return "error: " + error;
      for (const auto& [id, st] : *all) {
        out += std::string(coll) + "/" + std::to_string(id) + " " + st.payload + " " +
               testing_util::VectorJson(st.vector) + "\n";
      }
    }
    auto r = Call("GET", "/collections");
    return out + r.body.substr(0, r.body.find("\"time\""));
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  int port_ = 0;
};

TEST_F(BadInputTest, EveryBadRequestGetsA4xxJsonErrorAndChangesNothing) {
  const std::string before = Snapshot();
  ASSERT_THAT(before, ::testing::HasSubstr("c/19 "));
  const auto cases = Cases();
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases) {
    // Requests with a custom Content-Type are sent raw (HttpCall adds its own).
    HttpResult r;
    if (!c.headers.empty()) {
      r = RawCall(port_, c.method + " " + c.target +
                             " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + c.headers[0] +
                             "\r\nContent-Length: " + std::to_string(c.body.size()) + "\r\n\r\n" +
                             c.body);
    } else {
      r = Call(c.method, c.target, c.body);
    }
    if (c.want == 4) {
      EXPECT_TRUE(r.status >= 400 && r.status < 500) << c.name << ": " << r.status << " " << r.body;
    } else {
      EXPECT_EQ(r.status, c.want) << c.name << ": " << r.body.substr(0, 300);
    }
    EXPECT_TRUE(IsJsonError(r.body))
        << c.name << ": not a JSON error body: " << r.body.substr(0, 300);
    ASSERT_EQ(Call("GET", "/healthz").status, 200) << "server down after " << c.name;
  }
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(Call("GET", "/collections/new1").status, 404);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("escape")));
}

TEST_F(BadInputTest, OversizedBodyAndHeaders) {
  const std::string before = Snapshot();
  // 2 MiB declared with a 1 MiB limit: 413 before the body is read.
  auto r = RawCall(port_,
                   "PUT /collections/c/points?wait=true HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_TRUE(IsJsonError(r.body)) << r.body;
  // A body just over the limit, actually sent.
  std::string big = R"({"points":[{"id":777,"vector":[1,2,3,4],"payload":{"s":")" +
                    std::string((1 << 20) + 10, 'x') + "\"}}]}";
  r = Call("PUT", "/collections/c/points?wait=true", big);
  EXPECT_TRUE(r.status == 413 || r.status == 0) << r.status;  // 0: reset while sending
  // 20 KiB of header fields (limit 16 KiB): 431.
  r = RawCall(port_, "GET /collections/c HTTP/1.1\r\nHost: x\r\nX-Big: " +
                         std::string(20 << 10, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_TRUE(IsJsonError(r.body)) << r.body;
  // A garbage request line.
  r = RawCall(port_, "HELLO WORLD\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.body;
  // A body shorter than its Content-Length, then the connection closes.
  r = RawCall(
      port_, "PUT /collections/c/points HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 2000);
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(BadInputTest, SlowClientsDoNotBlockOthers) {
  const std::string before = Snapshot();
  // 20 connections each sending half a request and then nothing.
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    const int fd = testing_util::ConnectLoopback(port_, 30000);
    ASSERT_GE(fd, 0);
    const std::string half =
        i % 2 ? "PUT /collections/c/points?wait=true HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                "\r\n{\"points\":[{\"id\":1,"
              : "POST /collections/c/points/search HTTP/1.1\r\nHo";
    ASSERT_GT(send(fd, half.data(), half.size(), MSG_NOSIGNAL), 0);
    fds.push_back(fd);
  }
  // Others are served promptly meanwhile.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = HttpCall(port_, "POST", "/collections/c/points/search",
                      R"({"vector":[1,2,3,4],"limit":3})", {}, 5000);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0) << "slow clients stalled other requests";
  for (int fd : fds) close(fd);
  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace qvec
