// Crash recovery of the real server: concurrent acknowledged writes, kill -9
// at seeded random moments, restart on the same data, and a check that every
// acknowledged write (and no acknowledged delete) survived. Also kill -9
// during a background IVF build / rebuild, and damaged data directories.
//
// QVEC_CRASH_TRIALS sets the number of kill/restart trials (default 10;
// `make crash-test` runs 100).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

namespace fs = std::filesystem;
using testing_util::CountPoints;
using testing_util::HitIds;
using testing_util::HttpCall;
using testing_util::PointState;
using testing_util::ScrollAll;
using testing_util::ServerProcess;
using testing_util::TempDir;
using testing_util::UnitVector;
using testing_util::VectorJson;

constexpr size_t kDim = 8;
constexpr int kWriters = 3;
constexpr uint64_t kIdsPerWriter = 150;

int Trials() {
  const char* env = std::getenv("QVEC_CRASH_TRIALS");
  int n = env ? std::atoi(env) : 10;
  return n > 0 ? n : 10;
}

// What the test knows about one point id. `acked` is the state the last
// acknowledged write left (nullopt = absent). While a write was in flight at
// the kill, `pending` holds its outcome: after the restart the point must be
// in the acked or in the pending state, nothing else.
struct Expect {
  std::optional<PointState> acked;
  bool in_flight = false;
  std::optional<PointState> pending;
};

// Writes from one client thread: upserts (wait=true, payloads) and deletes of
// its own ids, until the server stops answering or `deadline`.
class Writer {
 public:
  Writer(int index, uint64_t seed) : index_(index), rng_(seed) {}

  std::map<uint64_t, Expect>& model() { return model_; }

  // Returns the number of acknowledged operations; records a failure in
  // `error` for any answer other than 200 or "no answer".
  int Run(int port, const std::string& coll, std::chrono::steady_clock::time_point deadline,
          std::string* error) {
    int acked = 0;
    for (int op = 0; op < 100000 && std::chrono::steady_clock::now() < deadline; ++op) {
      std::uniform_int_distribution<uint64_t> pick(0, kIdsPerWriter - 1);
      const bool del = std::uniform_int_distribution<int>(0, 3)(rng_) == 0;
      const int n = std::uniform_int_distribution<int>(1, 4)(rng_);
      std::set<uint64_t> ids;
      for (int i = 0; i < n; ++i) ids.insert(pick(rng_) * kWriters + index_);
      std::map<uint64_t, std::optional<PointState>> outcome;
      std::string body;
      testing_util::HttpResult r;
      if (del) {
        body = R"({"points":[)";
        for (uint64_t id : ids) {
          if (outcome.size()) body += ',';
          body += std::to_string(id);
          outcome[id] = std::nullopt;
        }
        body += "]}";
        for (auto& [id, st] : outcome) Begin(id, st);
        r = HttpCall(port, "POST", "/collections/" + coll + "/points/delete?wait=true", body, {},
                     10000);
      } else {
        body = R"({"points":[)";
        for (uint64_t id : ids) {
          PointState st;
          st.vector = UnitVector(rng_, kDim);
          st.payload = R"({"w":)" + std::to_string(index_) + R"(,"op":)" + std::to_string(op) +
                       R"(,"s":"x)" + std::to_string(rng_() % 1000) + R"("})";
          if (outcome.size()) body += ',';
          body += R"({"id":)" + std::to_string(id) + R"(,"vector":)" + VectorJson(st.vector) +
                  R"(,"payload":)" + st.payload + "}";
          outcome[id] = st;
        }
        body += "]}";
        for (auto& [id, st] : outcome) Begin(id, st);
        r = HttpCall(port, "PUT", "/collections/" + coll + "/points?wait=true", body, {}, 10000);
      }
      if (r.status == 0) return acked;  // the server died: the op stays in flight
      if (r.status != 200) {
        *error = "writer " + std::to_string(index_) + ": HTTP " + std::to_string(r.status) + " " +
                 r.body;
        return acked;
      }
      for (auto& [id, st] : outcome) {
        model_[id].acked = st;
        model_[id].in_flight = false;
      }
      ++acked;
    }
    return acked;
  }

 private:
  void Begin(uint64_t id, const std::optional<PointState>& st) {
    model_[id].in_flight = true;
    model_[id].pending = st;
  }

  int index_;
  std::mt19937_64 rng_;
  std::map<uint64_t, Expect> model_;
};

std::string Describe(const std::optional<PointState>& s) {
  if (!s) return "<absent>";
  return s->payload + " " + VectorJson(s->vector);
}

// Checks the restarted server against the writers' models and resolves
// in-flight writes to what was found. Returns "" when everything matches.
std::string Verify(int port, const std::string& coll, std::vector<Writer>* writers,
                   int* resolved_in_flight) {
  std::string error;
  auto stored = ScrollAll(port, coll, &error);
  if (!stored) return error;
  const int64_t count = CountPoints(port, coll);
  if (count != static_cast<int64_t>(stored->size())) {
    return "count " + std::to_string(count) + " != scrolled " + std::to_string(stored->size());
  }
  std::set<uint64_t> known;
  for (auto& w : *writers) {
    for (auto& [id, e] : w.model()) {
      known.insert(id);
      auto it = stored->find(id);
      std::optional<PointState> found;
      if (it != stored->end()) found = it->second;
      const bool is_acked =
          found.has_value() == e.acked.has_value() && (!found || *found == *e.acked);
      const bool is_pending = e.in_flight && found.has_value() == e.pending.has_value() &&
                              (!found || *found == *e.pending);
      if (!is_acked && !is_pending) {
        return "point " + std::to_string(id) + ": found " + Describe(found) + ", acknowledged " +
               Describe(e.acked) + (e.in_flight ? ", in flight " + Describe(e.pending) : "");
      }
      if (e.in_flight) {
        ++*resolved_in_flight;
        e.acked = found;
        e.in_flight = false;
      }
    }
  }
  for (auto& [id, st] : *stored) {
    if (!known.count(id)) return "point " + std::to_string(id) + " was never written";
  }
  // Every point is its own nearest neighbour under exact search (unit vectors, Dot).
  int checked = 0;
  for (auto& [id, st] : *stored) {
    if (checked++ % 17 != 0) continue;
    auto r = HttpCall(
        port, "POST", "/collections/" + coll + "/points/search",
        R"({"vector":)" + VectorJson(st.vector) + R"(,"limit":1,"params":{"exact":true}})");
    auto ids = HitIds(r.body);
    if (r.status != 200 || ids.empty() || ids[0] != id) {
      return "search for point " + std::to_string(id) + ": HTTP " + std::to_string(r.status) + " " +
             r.body.substr(0, 300);
    }
  }
  return "";
}

TEST(CrashTest, AcknowledgedWritesSurviveKill9) {
  const int trials = Trials();
  TempDir dir;
  const std::string data = dir.Sub("data");
  const std::string coll = "crash";
  std::mt19937_64 rng(20260101);
  std::vector<Writer> writers;
  for (int i = 0; i < kWriters; ++i) writers.emplace_back(i, 1000 + i);
  {
    ServerProcess server(QVEC_BINARY, data);
    ASSERT_TRUE(server.Start());
    auto r = HttpCall(server.port(), "PUT", "/collections/" + coll,
                      R"({"vectors":{"size":8,"distance":"Dot"}})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  int total_acked = 0, total_in_flight = 0;
  for (int trial = 0; trial < trials; ++trial) {
    ServerProcess server(QVEC_BINARY, data);
    ASSERT_TRUE(server.Start()) << "trial " << trial << ": the server did not restart";
    std::string mismatch = Verify(server.port(), coll, &writers, &total_in_flight);
    ASSERT_EQ(mismatch, "") << "trial " << trial;

    // Writers run until the kill (at most 2 s); the kill comes after a seeded
    // random delay of 20..400 ms.
    const auto kill_after =
        std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::vector<std::string> errors(kWriters);
    std::vector<int> acked(kWriters);
    std::vector<std::thread> threads;
    for (int i = 0; i < kWriters; ++i) {
      threads.emplace_back(
          [&, i] { acked[i] = writers[i].Run(server.port(), coll, deadline, &errors[i]); });
    }
    std::this_thread::sleep_for(kill_after);
    server.Kill(SIGKILL);
    for (auto& t : threads) t.join();
    for (int i = 0; i < kWriters; ++i) {
      ASSERT_EQ(errors[i], "") << "trial " << trial;
      total_acked += acked[i];
    }
  }
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start());
  ASSERT_EQ(Verify(server.port(), coll, &writers, &total_in_flight), "");
  std::printf("[ crash ] %d trials, %d acknowledged operations, %d in flight at a kill\n", trials,
              total_acked, total_in_flight);
  EXPECT_GT(total_acked, trials);  // the writers did get work done between kills
}

// ---------------------------------------------------------------------------
// kill -9 during the background IVF build and rebuild
// ---------------------------------------------------------------------------

std::string IndexState(int port, const std::string& coll) {
  auto r = HttpCall(port, "GET", "/collections/" + coll, "", {}, 5000);
  if (r.status != 200) return "HTTP " + std::to_string(r.status);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return "bad JSON: " + r.body;
  std::string_view state;
  if (doc["result"]["qvec"]["index"]["state"].get(state) != simdjson::SUCCESS) {
    return "no state: " + r.body;
  }
  return std::string(state);
}

// Upserts points [first, first + n) of 32-d unit vectors (seeded by id) in
// batches of 250; returns false on any error.
bool InsertRange(int port, const std::string& coll, uint64_t first, uint64_t n,
                 std::map<uint64_t, std::vector<float>>* vectors) {
  for (uint64_t b = first; b < first + n; b += 250) {
    std::string body = R"({"points":[)";
    for (uint64_t id = b; id < std::min(first + n, b + 250); ++id) {
      std::mt19937_64 rng(id * 7919 + 1);
      auto v = UnitVector(rng, 32);
      if (id != b) body += ',';
      body += R"({"id":)" + std::to_string(id) + R"(,"vector":)" + VectorJson(v) +
              R"(,"payload":{"i":)" + std::to_string(id) + "}}";
      (*vectors)[id] = std::move(v);
    }
    body += "]}";
    auto r = HttpCall(port, "PUT", "/collections/" + coll + "/points?wait=true", body);
    if (r.status != 200) return false;
  }
  return true;
}

// After a restart: exactly the acknowledged ids, count == scroll, each point
// found by an exact search for its own vector, and a sane index state.
void CheckIvfCollection(int port, const std::string& coll,
                        const std::map<uint64_t, std::vector<float>>& acked) {
  std::string error;
  auto stored = ScrollAll(port, coll, &error);
  ASSERT_TRUE(stored) << error;
  ASSERT_EQ(CountPoints(port, coll), static_cast<int64_t>(stored->size()));
  ASSERT_EQ(stored->size(), acked.size());
  for (const auto& [id, v] : acked) {
    auto it = stored->find(id);
    ASSERT_NE(it, stored->end()) << "point " << id << " lost";
    ASSERT_EQ(it->second.vector.size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) ASSERT_NEAR(it->second.vector[i], v[i], 1e-6);
    ASSERT_EQ(it->second.payload, R"({"i":)" + std::to_string(id) + "}");
  }
  // Exact search for every point (one batch request per 100 points).
  auto it = acked.begin();
  while (it != acked.end()) {
    std::string body = R"({"searches":[)";
    std::vector<uint64_t> want;
    for (int i = 0; i < 100 && it != acked.end(); ++i, ++it) {
      if (i) body += ',';
      body += R"({"vector":)" + VectorJson(it->second) + R"(,"limit":1,"params":{"exact":true}})";
      want.push_back(it->first);
    }
    body += "]}";
    auto r = HttpCall(port, "POST", "/collections/" + coll + "/points/search/batch", body);
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.body).get(doc), simdjson::SUCCESS);
    size_t i = 0;
    for (simdjson::dom::element hits : doc["result"].get_array()) {
      uint64_t got = 0;
      ASSERT_EQ(hits.at(0)["id"].get(got), simdjson::SUCCESS) << r.body.substr(0, 300);
      ASSERT_EQ(got, want[i]);
      ++i;
    }
    ASSERT_EQ(i, want.size());
  }
  // An approximate (default) search works too.
  auto r = HttpCall(port, "POST", "/collections/" + coll + "/points/search",
                    R"({"vector":)" + VectorJson(acked.begin()->second) + R"(,"limit":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(HitIds(r.body).empty());
  const std::string state = IndexState(port, coll);
  EXPECT_THAT(state, ::testing::AnyOf("flat", "training", "ivf"));
}

// Waits (bounded) until the index state is `want`; returns the last state.
std::string WaitForState(int port, const std::string& coll, const std::string& want,
                         int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string state;
  while (std::chrono::steady_clock::now() < deadline) {
    state = IndexState(port, coll);
    if (state == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return state;
}

TEST(CrashTest, Kill9DuringIvfBuildAndRebuild) {
  const std::string coll = "ivf";
  int caught_training = 0;
  // Kill delays after the insert that crosses the threshold (seeded).
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 3; ++trial) {
    TempDir dir;
    const std::string data = dir.Sub("data");
    std::map<uint64_t, std::vector<float>> acked;
    {
      ServerProcess server(QVEC_BINARY, data);
      ASSERT_TRUE(server.Start());
      auto r = HttpCall(server.port(), "PUT", "/collections/" + coll,
                        R"({"vectors":{"size":32,"distance":"Dot"},)"
                        R"("qvec":{"index":{"ivf_threshold":2000}}})");
      ASSERT_EQ(r.status, 200) << r.body;
      ASSERT_TRUE(InsertRange(server.port(), coll, 0, 2000, &acked));
      // The build started in the background after this batch.
      const int delay = std::uniform_int_distribution<int>(0, 30)(rng);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      if (IndexState(server.port(), coll) == "training") ++caught_training;
      server.Kill(SIGKILL);
    }
    {
      ServerProcess server(QVEC_BINARY, data);
      ASSERT_TRUE(server.Start());
      CheckIvfCollection(server.port(), coll, acked);
      if (HasFatalFailure()) return;
      if (trial == 0) {
        // Let the (restarted) build finish, then cross 4x the trained size to
        // trigger a rebuild and kill it too.
        std::string state = WaitForState(server.port(), coll, "ivf", 60000);
        ASSERT_EQ(state, "ivf");
        ASSERT_TRUE(InsertRange(server.port(), coll, 2000, 6000, &acked));
        if (IndexState(server.port(), coll) == "training") ++caught_training;
        server.Kill(SIGKILL);
      } else {
        server.Kill(SIGKILL);
        continue;
      }
    }
    ServerProcess server(QVEC_BINARY, data);
    ASSERT_TRUE(server.Start());
    CheckIvfCollection(server.port(), coll, acked);
    if (HasFatalFailure()) return;
    // The rebuild completes after the restart.
    EXPECT_EQ(WaitForState(server.port(), coll, "ivf", 60000), "ivf");
    CheckIvfCollection(server.port(), coll, acked);
  }
  std::printf("[ crash ] IVF: the kill hit a running build %d times\n", caught_training);
}

// ---------------------------------------------------------------------------
// Damaged data directories
// ---------------------------------------------------------------------------

// Runs `qvec serve` on `data` until it either answers /healthz (returns 0
// after stopping it) or exits (returns its exit code); stderr into `err`.
int StartOrFail(const std::string& data, std::string* err) {
  const int port = testing_util::FreePort();
  const std::string err_path = data + "-stderr.txt";
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(err_path.c_str(), "w", stderr);
    (void)f;
    execl(QVEC_BINARY, QVEC_BINARY, "serve", "--data", data.c_str(), "--port",
          std::to_string(port).c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  int code = -1;
  for (int i = 0; i < 1000; ++i) {  // at most ~20 s
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (HttpCall(port, "GET", "/healthz", "", {}, 500).status == 200) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      code = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  *err = ss.str();
  return code;
}

// Fills a collection with `n` points (ids 0..n-1) and stops the server with
// SIGTERM (so the data is flushed into SST files) or SIGKILL.
void Populate(const std::string& data, int n, int sig,
              std::map<uint64_t, std::vector<float>>* acked) {
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start());
  auto r = HttpCall(server.port(), "PUT", "/collections/ivf",
                    R"({"vectors":{"size":32,"distance":"Dot"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(InsertRange(server.port(), "ivf", 0, n, acked));
  if (sig == SIGKILL) {
    server.Kill(SIGKILL);
  } else {
    server.Kill(sig);
    ASSERT_NE(server.WaitExit(20000), -1);
  }
}

std::vector<fs::path> FilesWithExtension(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CrashTest, StrayTemporaryFilesDoNotPreventStart) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::map<uint64_t, std::vector<float>> acked;
  Populate(data, 500, SIGKILL, &acked);
  for (const char* name : {"000123.sst.tmp", "MANIFEST-000999.dbtmp", "000777.dbtmp",
                           "OPTIONS-000042.dbtmp", "CURRENT.tmp"}) {
    std::ofstream(data + "/" + name) << "garbage left by a crash";
  }
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start());
  CheckIvfCollection(server.port(), "ivf", acked);
}

TEST(CrashTest, TruncatedWalTailLosesOnlyTheTail) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::map<uint64_t, std::vector<float>> acked;
  Populate(data, 1000, SIGKILL, &acked);
  auto logs = FilesWithExtension(data, ".log");
  ASSERT_FALSE(logs.empty());
  const fs::path wal = logs.back();
  const auto size = fs::file_size(wal);
  ASSERT_GT(size, 1000u);
  fs::resize_file(wal, size - 777);  // a torn tail, mid-record
  std::string err;
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start()) << "a torn WAL tail must not prevent the start";
  std::string error;
  auto stored = ScrollAll(server.port(), "ivf", &error);
  ASSERT_TRUE(stored) << error;
  // The last batch (250 points, ~35 KB) was torn: whole batches survive or
  // vanish (atomic write batches), and only from the end.
  EXPECT_EQ(stored->size() % 250, 0u);
  EXPECT_GE(stored->size(), 750u);
  EXPECT_LT(stored->size(), 1000u);
  std::map<uint64_t, std::vector<float>> survivors;
  for (const auto& [id, st] : *stored) {
    ASSERT_LT(id, stored->size()) << "a hole: writes survived past a lost one";
    survivors[id] = acked[id];
  }
  CheckIvfCollection(server.port(), "ivf", survivors);
}

// Overwrites `n` bytes in the middle of `path`.
void Scribble(const fs::path& path, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = fs::file_size(path);
  f.seekp(static_cast<std::streamoff>(size / 2));
  std::string junk(n, '\xA5');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

// RocksDB keeps the data of a stopped server in its WAL (Close does not flush
// memtables while the WAL is on); the next open replays the WAL into L0 SST
// files. After this, the data lives in SSTs.
void ReopenToFlush(const std::string& data) {
  ServerProcess server(QVEC_BINARY, data);
  ASSERT_TRUE(server.Start());
  server.Kill(SIGTERM);
  ASSERT_NE(server.WaitExit(20000), -1);
}

// Each SST file of a database, damaged in turn (64 bytes in its middle):
// the server must refuse to start with a clear message, never serve the rest.
TEST(CrashTest, CorruptedSstRefusesToStart) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::map<uint64_t, std::vector<float>> acked;
  Populate(data, 2000, SIGTERM, &acked);
  ReopenToFlush(data);
  const auto ssts = FilesWithExtension(data, ".sst");
  ASSERT_FALSE(ssts.empty()) << "no SST file after a reopen";
  int n = 0;
  for (const auto& sst : ssts) {
    const std::string copy = dir.Sub("copy" + std::to_string(n++));
    fs::copy(data, copy, fs::copy_options::recursive);
    Scribble(fs::path(copy) / sst.filename(), 64);
    std::string err;
    const int code = StartOrFail(copy, &err);
    EXPECT_NE(code, 0) << "qvec served a database with a corrupted " << sst.filename() << " ("
                       << fs::file_size(sst) << " bytes)";
    EXPECT_THAT(err, ::testing::HasSubstr("cannot open the database")) << err;
    EXPECT_THAT(err, ::testing::HasSubstr("orrupt")) << err;
  }
}

TEST(CrashTest, CorruptedManifestOrCurrentRefusesToStart) {
  for (const std::string which : {"MANIFEST", "CURRENT"}) {
    TempDir dir;
    const std::string data = dir.Sub("data");
    std::map<uint64_t, std::vector<float>> acked;
    Populate(data, 300, SIGTERM, &acked);
    ReopenToFlush(data);
    fs::path target;
    for (const auto& e : fs::directory_iterator(data)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(which, 0) == 0 && name.find("tmp") == std::string::npos) target = e.path();
    }
    ASSERT_FALSE(target.empty()) << which;
    if (which == "CURRENT") {
      std::ofstream(target, std::ios::trunc) << "MANIFEST-999999\n";
    } else {
      Scribble(target, 32);
    }
    std::string err;
    const int code = StartOrFail(data, &err);
    EXPECT_NE(code, 0) << which << ": qvec started on a damaged database";
    EXPECT_THAT(err, ::testing::HasSubstr("cannot open the database")) << which << ": " << err;
  }
}

}  // namespace
}  // namespace qvec
