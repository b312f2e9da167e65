// Upgrade of a format-1 database (tests/fixtures/format1, written by qvec
// 0.1.0 before named vector fields) by the current server: it opens, is
// converted in place, and answers every recorded request as the old server
// did: counts, retrieved points (payloads and vectors), exact and approximate
// searches (flat, IVF, uint8), filtered searches and scrolls. Also with
// kill -9 in the middle of the conversion (the QVEC_TEST_CRASH_DURING_UPGRADE
// hook makes the server exit after that many converted batches), and across
// a second restart and new writes.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

namespace fs = std::filesystem;
using simdjson::dom::element;
using simdjson::dom::element_type;
using testing_util::HttpCall;
using testing_util::ServerProcess;
using testing_util::TempDir;

const fs::path kFixture = fs::path(QVEC_SOURCE_DIR) / "tests/fixtures/format1";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Copies the fixture's data directory: opening it rewrites files.
void CopyFixture(const std::string& to) {
  fs::copy(kFixture / "data", to, fs::copy_options::recursive);
}

// Compares two JSON values: numbers within `tol` (relative to magnitude,
// at least absolute), everything else exactly. Appends differences to `diff`.
void Compare(element want, element got, double tol, const std::string& where, std::string* diff) {
  auto is_number = [](element e) {
    return e.type() == element_type::INT64 || e.type() == element_type::UINT64 ||
           e.type() == element_type::DOUBLE;
  };
  if (diff->size() > 4000) return;
  if (is_number(want) && is_number(got)) {
    const double a = double(want.get_double().value_unsafe());
    const double b = double(got.get_double().value_unsafe());
    if (std::fabs(a - b) > tol * std::max(1.0, std::fabs(a))) {
      *diff += where + ": want " + std::to_string(a) + ", got " + std::to_string(b) + "\n";
    }
    return;
  }
  if (want.type() != got.type()) {
    *diff +=
        where + ": want " + simdjson::to_string(want) + ", got " + simdjson::to_string(got) + "\n";
    return;
  }
  if (want.type() == element_type::ARRAY) {
    simdjson::dom::array a(want), b(got);
    if (a.size() != b.size()) {
      *diff += where + ": want " + std::to_string(a.size()) + " elements, got " +
               std::to_string(b.size()) + "\n";
      return;
    }
    size_t i = 0;
    auto it = b.begin();
    for (element x : a) {
      Compare(x, *it, tol, where + "[" + std::to_string(i) + "]", diff);
      ++it;
      ++i;
    }
    return;
  }
  if (want.type() == element_type::OBJECT) {
    simdjson::dom::object a(want), b(got);
    for (auto field : a) {
      element y;
      if (b.at_key(field.key).get(y) != simdjson::SUCCESS) {
        *diff += where + "." + std::string(field.key) + ": missing\n";
        continue;
      }
      Compare(field.value, y, tol, where + "." + std::string(field.key), diff);
    }
    for (auto field : b) {
      element x;
      if (a.at_key(field.key).get(x) != simdjson::SUCCESS) {
        *diff += where + "." + std::string(field.key) + ": unexpected\n";
      }
    }
    return;
  }
  if (simdjson::to_string(want) != simdjson::to_string(got)) {
    *diff +=
        where + ": want " + simdjson::to_string(want) + ", got " + simdjson::to_string(got) + "\n";
  }
}

// Sends `request` to `method path` and compares the answer's `result` with
// `want`. Returns the differences (empty when equal).
std::string Replay(int port, const std::string& method, const std::string& path, element request,
                   element want, double tol) {
  auto r = HttpCall(port, method, path, simdjson::to_string(request));
  if (r.status != 200) return path + ": HTTP " + std::to_string(r.status) + " " + r.body + "\n";
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return path + ": bad JSON\n";
  std::string diff;
  Compare(want, doc["result"].value(), tol, path, &diff);
  return diff;
}

// Every recorded answer of the fixture, replayed against the server on `port`.
void ExpectFixtureAnswers(int port) {
  simdjson::dom::parser parser;
  const std::string text = ReadFile(kFixture / "expected.json");
  element expected = parser.parse(text).value();
  size_t replayed = 0;
  for (auto [name_view, coll] : simdjson::dom::object(expected["collections"].value())) {
    const std::string name(name_view);
    const std::string base = "/collections/" + name + "/points";
    SCOPED_TRACE(name);
    EXPECT_EQ(Replay(port, "POST", base + "/count", coll["count"]["request"].value(),
                     coll["count"]["result"].value(), 0),
              "");
    // Payloads exactly; vectors and scores as float32 text round trips.
    EXPECT_EQ(Replay(port, "POST", base, coll["points"]["request"].value(),
                     coll["points"]["result"].value(), 1e-6),
              "");
    EXPECT_EQ(Replay(port, "POST", base + "/scroll", coll["scroll"]["request"].value(),
                     coll["scroll"]["result"].value(), 0),
              "");
    replayed += 3;
    for (element search : simdjson::dom::array(coll["searches"].value())) {
      SCOPED_TRACE(std::string(search["name"].get_string().value()));
      EXPECT_EQ(Replay(port, "POST", base + "/search", search["request"].value(),
                       search["result"].value(), 1e-5),
                "");
      ++replayed;
    }
  }
  EXPECT_GE(replayed, 40u);
}

std::string IndexState(int port, const std::string& collection) {
  auto r = HttpCall(port, "GET", "/collections/" + collection);
  simdjson::dom::parser parser;
  element doc;
  if (r.status != 200 || parser.parse(r.body).get(doc) != simdjson::SUCCESS) return "?";
  std::string_view state;
  if (doc["result"]["qvec"]["index"]["state"].get(state) != simdjson::SUCCESS) return "?";
  uint64_t trained = 0;
  if (doc["result"]["qvec"]["index"]["trained_on_points"].get(trained) != simdjson::SUCCESS) {
    return std::string(state) + "/?";
  }
  return std::string(state) + "/" + std::to_string(trained);
}

TEST(UpgradeTest, FormatOneDatabaseServesTheSameAnswers) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  CopyFixture(data);
  {
    ServerProcess server(QVEC_BINARY, data);
    ASSERT_TRUE(server.Start());
    ExpectFixtureAnswers(server.port());
    // The IVF model was carried over, not retrained.
    EXPECT_EQ(IndexState(server.port(), "ivf_dot"), "ivf/1000");
    // Writable in the new format.
    auto r = HttpCall(server.port(), "PUT", "/collections/flat_cos/points",
                      R"({"points":[{"id":9001,"vector":[1,2,3,4,5,6,7,8],"payload":{"new":1}}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    r = HttpCall(server.port(), "POST", "/collections/flat_cos/points/delete",
                 R"({"points":[9001]})");
    ASSERT_EQ(r.status, 200) << r.body;
    server.Kill(SIGTERM);
    ASSERT_EQ(server.WaitExit(20000), 0);
  }
  // The second open reads format 2 and still answers the same.
  ServerProcess again(QVEC_BINARY, data);
  ASSERT_TRUE(again.Start());
  ExpectFixtureAnswers(again.port());
  EXPECT_EQ(IndexState(again.port(), "ivf_dot"), "ivf/1000");
}

TEST(UpgradeTest, KillNineDuringTheUpgradeResumes) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  CopyFixture(data);
  // The fixture converts in 5 batches of up to 1024 points (302 + 2600 +
  // 200): die after the 1st, then after 2 more, then finish.
  for (const char* crash_after : {"1", "2"}) {
    SCOPED_TRACE(crash_after);
    setenv("QVEC_TEST_CRASH_DURING_UPGRADE", crash_after, 1);
    ServerProcess server(QVEC_BINARY, data);
    const bool started = server.Start();
    unsetenv("QVEC_TEST_CRASH_DURING_UPGRADE");
    EXPECT_FALSE(started) << "the crash hook did not fire";
  }
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start());
  ExpectFixtureAnswers(server.port());
  EXPECT_EQ(IndexState(server.port(), "ivf_dot"), "ivf/1000");
}

}  // namespace
}  // namespace qvec
