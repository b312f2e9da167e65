// Consistency under concurrency, checked against the real server with an
// oracle of what was sent and acknowledged.
//
// Each round, writer threads own disjoint ids and upsert, overwrite, update
// payloads and delete them one operation at a time; a deleter thread
// deletes by filter (tag "doomed") all the while; reader threads scroll,
// retrieve and search (with filters) and check every record they get:
//   - it comes from one write: its payload names the write (id, version)
//     and its vector is the vector that write sent (no torn record);
//   - that write was sent (no state that no write produced, no empty
//     payload: every write carries one);
//   - a search hit passes the request's filter and its score is the inner
//     product of the query with the returned vector.
// After the round, the final state of every id must be what its owner's last
// acknowledged operation left, except that a point whose last write tagged it
// "doomed" may have been deleted by the filter: an overwrite acknowledged as
// "keep" is never lost to a concurrent delete by filter.
//
// Runs on a flat collection and on an IVF one (which grows during the run,
// so background builds and index swaps happen meanwhile).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::FloatText;
using testing_util::KeepAliveClient;
using testing_util::ServerProcess;
using testing_util::VectorJson;

constexpr size_t kDim = 16;
constexpr int kWriters = 3;
constexpr int kReaders = 3;
constexpr uint64_t kIdsPerRound = 240;
constexpr auto kRoundTime = std::chrono::milliseconds(700);

// The vector version `v` of point `id` writes: a unit vector, derived from
// both, so that a record's vector tells which write it came from.
std::vector<float> VecOf(uint64_t id, uint64_t v) {
  std::mt19937_64 rng(id * 1000003 + v * 7919 + 17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kDim);
  double norm = 0;
  for (auto& c : x) {
    c = normal(rng);
    norm += double(c) * c;
  }
  for (auto& c : x) c = static_cast<float>(c / std::sqrt(norm));
  return x;
}

struct Violations {
  std::mutex mu;
  std::map<std::string, int> counts;
  std::vector<std::string> samples;
  void Add(const std::string& kind, const std::string& detail) {
    std::lock_guard lock(mu);
    ++counts[kind];
    if (samples.size() < 20) samples.push_back(kind + ": " + detail);
  }
  int Total() {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto& [k, v] : counts) n += v;
    return n;
  }
};

// What the owner of an id last had acknowledged.
struct Expected {
  bool exists = false;
  uint64_t v = 0;
  std::string tag;
  uint64_t p = 0;  // last set_payload mark, 0 = none since the upsert
};

class Checker {
 public:
  Checker(int port, std::string coll) : port_(port), coll_(std::move(coll)) {}

  // One round over ids [base, base + kIdsPerRound).
  void Round(int round, uint64_t base) {
    round_ = round;
    base_ = base;
    stop_ = false;
    std::vector<std::thread> threads;
    std::vector<std::map<uint64_t, Expected>> expected(kWriters);
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([this, w, &expected] { Writer(w, &expected[w]); });
    }
    threads.emplace_back([this] { FilterDeleter(); });
    for (int r = 0; r < kReaders; ++r) threads.emplace_back([this, r] { Reader(r); });
    std::this_thread::sleep_for(kRoundTime);
    stop_ = true;
    for (auto& t : threads) t.join();
    // Final state against the oracle.
    std::map<uint64_t, Expected> all;
    for (auto& m : expected) all.insert(m.begin(), m.end());
    std::string error;
    auto state = ScrollRound(&error);
    if (!state) {
      violations_.Add("final scroll failed", error);
      return;
    }
    for (uint64_t id = base_; id < base_ + kIdsPerRound; ++id) {
      auto want = all.find(id);
      auto got = state->find(id);
      const bool have = got != state->end();
      if (want == all.end() || !want->second.exists) {
        if (have) violations_.Add("deleted point present", std::to_string(id));
        continue;
      }
      const Expected& e = want->second;
      if (!have) {
        if (e.tag == "keep") {
          violations_.Add("acknowledged write lost",
                          "id " + std::to_string(id) + " v " + std::to_string(e.v) + " (keep)");
        }
        continue;
      }
      const Record& r = got->second;
      if (r.v != e.v || r.tag != e.tag || r.p != e.p) {
        violations_.Add("final state differs from the last acknowledged write",
                        "id " + std::to_string(id) + " want v" + std::to_string(e.v) + "/" + e.tag +
                            "/p" + std::to_string(e.p) + " got v" + std::to_string(r.v) + "/" +
                            r.tag + "/p" + std::to_string(r.p));
      }
    }
    checked_ += kIdsPerRound;
  }

  Violations& violations() { return violations_; }
  uint64_t reads_checked() const { return reads_checked_.load(); }
  uint64_t writes_acked() const { return writes_acked_.load(); }
  uint64_t ids_checked() const { return checked_; }

 private:
  struct Record {
    uint64_t id = 0;
    uint64_t v = 0;
    std::string tag;
    uint64_t p = 0;
    int64_t round = -1;
    std::vector<float> vector;
  };

  static uint64_t SentKey(uint64_t id, uint64_t v) { return (id << 24) | v; }

  std::string PayloadJson(uint64_t id, uint64_t v, const std::string& tag) const {
    return "{\"id\":" + std::to_string(id) + ",\"v\":" + std::to_string(v) + ",\"tag\":\"" + tag +
           "\",\"round\":" + std::to_string(round_) + "}";
  }

  void Writer(int w, std::map<uint64_t, Expected>* expected) {
    KeepAliveClient client(port_);
    std::mt19937_64 rng(round_ * 131 + w);
    std::vector<uint64_t> mine;
    for (uint64_t id = base_; id < base_ + kIdsPerRound; ++id) {
      if (static_cast<int>(id % kWriters) == w) mine.push_back(id);
    }
    uint64_t p_mark = 0;
    while (!stop_) {
      const uint64_t id = mine[rng() % mine.size()];
      Expected& e = (*expected)[id];
      const unsigned dice = rng() % 100;
      if (dice < 55 || !e.exists) {
        const uint64_t v = ++versions_[id % versions_.size()] * 64 + (id % 64);
        const std::string tag = rng() % 2 ? "keep" : "doomed";
        {
          std::lock_guard lock(sent_mu_);
          sent_.insert(SentKey(id, v));
        }
        const std::string body = "{\"points\":[{\"id\":" + std::to_string(id) +
                                 ",\"vector\":" + VectorJson(VecOf(id, v)) +
                                 ",\"payload\":" + PayloadJson(id, v, tag) + "}]}";
        auto r = client.Call("PUT", "/collections/" + coll_ + "/points?wait=true", body);
        if (r.status != 200) {
          violations_.Add("upsert failed", std::to_string(r.status) + " " + r.body);
          continue;
        }
        e = Expected{true, v, tag, 0};
      } else if (dice < 75) {
        // A payload update: the point becomes "keep" (merged, so v stays).
        const uint64_t p = ++p_mark + static_cast<uint64_t>(w) * 1000000;
        const std::string body = "{\"points\":[" + std::to_string(id) +
                                 "],\"payload\":{\"tag\":\"keep\",\"p\":" + std::to_string(p) +
                                 "}}";
        auto r = client.Call("POST", "/collections/" + coll_ + "/points/payload?wait=true", body);
        if (r.status == 404) {
          // Deleted by the filter meanwhile (it was doomed): fine.
          if (e.tag != "doomed") violations_.Add("payload update found no point", r.body);
          e.exists = false;
          continue;
        }
        if (r.status != 200) {
          violations_.Add("payload update failed", std::to_string(r.status) + " " + r.body);
          continue;
        }
        e.tag = "keep";
        e.p = p;
      } else {
        const std::string body = "{\"points\":[" + std::to_string(id) + "]}";
        auto r = client.Call("POST", "/collections/" + coll_ + "/points/delete?wait=true", body);
        if (r.status != 200) {
          violations_.Add("delete failed", std::to_string(r.status) + " " + r.body);
          continue;
        }
        e.exists = false;
      }
      ++writes_acked_;
    }
  }

  void FilterDeleter() {
    KeepAliveClient client(port_);
    const std::string body =
        "{\"filter\":{\"must\":[{\"key\":\"tag\",\"match\":{\"value\":\"doomed\"}},"
        "{\"key\":\"round\",\"match\":{\"value\":" +
        std::to_string(round_) + "}}]}}";
    while (!stop_) {
      auto r = client.Call("POST", "/collections/" + coll_ + "/points/delete?wait=true", body);
      if (r.status != 200) violations_.Add("delete by filter failed", r.body);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  // Parses and checks one record (a scroll/retrieve record or a search hit).
  bool CheckRecord(simdjson::dom::element p, const char* where, Record* out) {
    uint64_t id = 0;
    if (p["id"].get(id) != simdjson::SUCCESS) {
      violations_.Add("record without an integer id", where);
      return false;
    }
    simdjson::dom::object payload;
    if (p["payload"].get_object().get(payload) != simdjson::SUCCESS) {
      violations_.Add("record without a payload", std::string(where) + " id " + std::to_string(id));
      return false;
    }
    Record r;
    r.id = id;
    uint64_t pid = 0;
    std::string_view tag;
    int64_t round = -1;
    if (payload["id"].get(pid) != simdjson::SUCCESS || payload["v"].get(r.v) != simdjson::SUCCESS ||
        payload["tag"].get(tag) != simdjson::SUCCESS ||
        payload["round"].get(round) != simdjson::SUCCESS) {
      violations_.Add("payload that no write sent", std::string(where) + " id " +
                                                        std::to_string(id) + ": " +
                                                        simdjson::to_string(p["payload"]));
      return false;
    }
    r.tag = std::string(tag);
    r.round = round;
    uint64_t pmark = 0;
    if (payload["p"].get(pmark) == simdjson::SUCCESS) r.p = pmark;
    if (pid != id) {
      violations_.Add("payload of another point", std::string(where) + " id " + std::to_string(id));
      return false;
    }
    {
      std::lock_guard lock(sent_mu_);
      if (!sent_.count(SentKey(id, r.v))) {
        violations_.Add("version that no write sent",
                        std::string(where) + " id " + std::to_string(id));
        return false;
      }
    }
    simdjson::dom::array vec;
    if (p["vector"].get_array().get(vec) != simdjson::SUCCESS) {
      violations_.Add("record without its vector", where);
      return false;
    }
    for (double x : vec) r.vector.push_back(static_cast<float>(x));
    const std::vector<float> want = VecOf(id, r.v);
    bool same = r.vector.size() == want.size();
    for (size_t i = 0; same && i < want.size(); ++i)
      same = std::fabs(r.vector[i] - want[i]) < 1e-6f;
    if (!same) {
      violations_.Add(
          "torn record: vector of another write than the payload",
          std::string(where) + " id " + std::to_string(id) + " v " + std::to_string(r.v));
      return false;
    }
    ++reads_checked_;
    if (out) *out = std::move(r);
    return true;
  }

  void Reader(int reader) {
    KeepAliveClient client(port_);
    simdjson::dom::parser parser;
    std::mt19937_64 rng(round_ * 977 + reader);
    const std::string round_cond =
        "{\"key\":\"round\",\"match\":{\"value\":" + std::to_string(round_) + "}}";
    while (!stop_) {
      const unsigned dice = rng() % 4;
      if (dice == 0) {
        auto r = client.Call("POST", "/collections/" + coll_ + "/points/scroll",
                             "{\"limit\":300,\"with_payload\":true,\"with_vector\":true,"
                             "\"filter\":{\"must\":[" +
                                 round_cond + "]}}");
        simdjson::dom::element doc;
        if (r.status != 200 || parser.parse(r.body).get(doc) != simdjson::SUCCESS) {
          violations_.Add("scroll failed", r.body.substr(0, 200));
          continue;
        }
        for (simdjson::dom::element p : doc["result"]["points"].get_array()) {
          Record rec;
          if (CheckRecord(p, "scroll", &rec) && rec.round != round_) {
            violations_.Add("scroll hit fails its filter", std::to_string(rec.id));
          }
        }
      } else if (dice == 1) {
        std::string ids;
        for (int i = 0; i < 20; ++i) {
          ids += (i ? "," : "") + std::to_string(base_ + rng() % kIdsPerRound);
        }
        auto r = client.Call("POST", "/collections/" + coll_ + "/points",
                             "{\"ids\":[" + ids + "],\"with_payload\":true,\"with_vector\":true}");
        simdjson::dom::element doc;
        if (r.status != 200 || parser.parse(r.body).get(doc) != simdjson::SUCCESS) {
          violations_.Add("retrieve failed", r.body.substr(0, 200));
          continue;
        }
        for (simdjson::dom::element p : doc["result"].get_array())
          CheckRecord(p, "retrieve", nullptr);
      } else {
        const std::vector<float> q = VecOf(rng(), 1);
        const bool batch = dice == 3;
        const std::string search = "{\"vector\":" + VectorJson(q) +
                                   ",\"limit\":10,\"with_payload\":true,\"with_vector\":true,"
                                   "\"filter\":{\"must\":[" +
                                   round_cond +
                                   ",{\"key\":\"tag\",\"match\":{\"value\":\"keep\"}}]}}";
        auto r = batch ? client.Call("POST", "/collections/" + coll_ + "/points/search/batch",
                                     "{\"searches\":[" + search + "," + search + "]}")
                       : client.Call("POST", "/collections/" + coll_ + "/points/search", search);
        simdjson::dom::element doc;
        if (r.status != 200 || parser.parse(r.body).get(doc) != simdjson::SUCCESS) {
          violations_.Add("search failed", r.body.substr(0, 200));
          continue;
        }
        std::vector<simdjson::dom::array> answers;
        if (batch) {
          for (simdjson::dom::element a : doc["result"].get_array()) answers.push_back(a);
        } else {
          answers.push_back(doc["result"].get_array());
        }
        for (simdjson::dom::array hits : answers) {
          double last = 1e30;
          for (simdjson::dom::element h : hits) {
            Record rec;
            if (!CheckRecord(h, "search", &rec)) continue;
            if (rec.tag != "keep" || rec.round != round_) {
              violations_.Add("search hit fails its filter",
                              std::to_string(rec.id) + " tag " + rec.tag);
            }
            double score = 0;
            if (h["score"].get(score) != simdjson::SUCCESS)
              violations_.Add("hit without a score", "");
            double dot = 0;
            for (size_t i = 0; i < kDim; ++i) dot += double(q[i]) * rec.vector[i];
            if (std::fabs(dot - score) > 1e-4) {
              violations_.Add("score does not match the returned vector",
                              std::to_string(rec.id) + ": " + std::to_string(score) + " vs " +
                                  std::to_string(dot));
            }
            if (score > last + 1e-6) violations_.Add("hits out of order", std::to_string(rec.id));
            last = score;
          }
        }
      }
    }
  }

  std::optional<std::map<uint64_t, Record>> ScrollRound(std::string* error) {
    std::map<uint64_t, Record> out;
    simdjson::dom::parser parser;
    KeepAliveClient client(port_);
    std::string offset = "null";
    for (;;) {
      auto r = client.Call("POST", "/collections/" + coll_ + "/points/scroll",
                           "{\"limit\":1000,\"with_payload\":true,\"with_vector\":true,"
                           "\"filter\":{\"must\":[{\"key\":\"round\",\"match\":{\"value\":" +
                               std::to_string(round_) + "}}]},\"offset\":" + offset + "}");
      simdjson::dom::element doc;
      if (r.status != 200 || parser.parse(r.body).get(doc) != simdjson::SUCCESS) {
        *error = r.body.substr(0, 200);
        return std::nullopt;
      }
      for (simdjson::dom::element p : doc["result"]["points"].get_array()) {
        Record rec;
        if (CheckRecord(p, "final scroll", &rec)) out[rec.id] = rec;
      }
      simdjson::dom::element next = doc["result"]["next_page_offset"];
      if (next.is_null()) return out;
      offset = simdjson::to_string(next);
    }
  }

  const int port_;
  const std::string coll_;
  int round_ = 0;
  uint64_t base_ = 0;
  std::atomic<bool> stop_{false};
  Violations violations_;
  std::mutex sent_mu_;
  std::unordered_set<uint64_t> sent_;
  // Per-id version counters (striped; each id has one writer, so no race on
  // a stripe's ids... but stripes are shared: atomics).
  std::array<std::atomic<uint64_t>, 64> versions_{};
  std::atomic<uint64_t> reads_checked_{0};
  std::atomic<uint64_t> writes_acked_{0};
  uint64_t checked_ = 0;
};

class ConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(QVEC_BINARY, dir_.path() + "/data");
    ASSERT_TRUE(server_->Start());
  }

  void CreateCollection(const std::string& name, const std::string& qvec_options) {
    auto r = testing_util::HttpCall(
        server_->port(), "PUT", "/collections/" + name,
        "{\"vectors\":{\"size\":" + std::to_string(kDim) + ",\"distance\":\"Dot\"}" +
            (qvec_options.empty() ? "" : ",\"qvec\":" + qvec_options) + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  void Run(const std::string& name, int rounds) {
    Checker checker(server_->port(), name);
    const auto start = std::chrono::steady_clock::now();
    for (int round = 1; round <= rounds; ++round) {
      checker.Round(round, 1000000 + static_cast<uint64_t>(round) * kIdsPerRound);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Violations& v = checker.violations();
    std::printf(
        "[%s] %d rounds in %.1f s: %llu acknowledged writes, %llu records checked, "
        "%llu final states checked, %d violations\n",
        name.c_str(), rounds, secs, static_cast<unsigned long long>(checker.writes_acked()),
        static_cast<unsigned long long>(checker.reads_checked()),
        static_cast<unsigned long long>(checker.ids_checked()), v.Total());
    for (const auto& [kind, n] : v.counts) std::printf("  %5d  %s\n", n, kind.c_str());
    for (const auto& s : v.samples) std::printf("  e.g. %s\n", s.c_str());
    EXPECT_EQ(v.Total(), 0);
    EXPECT_GT(checker.reads_checked(), 1000u);
    EXPECT_GT(checker.writes_acked(), 500u);
  }

  testing_util::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ConsistencyTest, FlatCollection) {
  CreateCollection("flat", "");
  Run("flat", 20);
}

TEST_F(ConsistencyTest, IvfCollectionWithBuildsDuringTheRun) {
  // IVF from 1000 points; the rounds grow the collection past 4x its
  // trained size, so a retrain and a swap happen while the checker runs.
  CreateCollection("ivf", R"({"index":{"ivf_threshold":1000,"nlist":16}})");
  std::string points;
  for (uint64_t id = 0; id < 1200; ++id) {
    points += (id ? "," : "") + std::string("{\"id\":") + std::to_string(id) +
              ",\"vector\":" + VectorJson(VecOf(id, 0)) +
              ",\"payload\":{\"id\":" + std::to_string(id) +
              ",\"v\":0,\"tag\":\"keep\",\"round\":0}}";
  }
  auto r = testing_util::HttpCall(server_->port(), "PUT", "/collections/ivf/points?wait=true",
                                  "{\"points\":[" + points + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  for (int i = 0; i < 400; ++i) {
    auto info = testing_util::HttpCall(server_->port(), "GET", "/collections/ivf");
    if (info.body.find("\"state\":\"ivf\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  Run("ivf", 20);
  auto info = testing_util::HttpCall(server_->port(), "GET", "/collections/ivf");
  EXPECT_NE(info.body.find("\"state\":\"ivf\""), std::string::npos) << info.body;
}

}  // namespace
}  // namespace qvec
