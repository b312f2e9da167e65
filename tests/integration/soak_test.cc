// Mixed load against the real server: ~100 upserts/s from one writer and 8
// concurrent searchers over keep-alive connections, for a bounded time.
// Asserts no errors, bounded resident-memory growth after warm-up, and every
// acknowledged point present at the end; prints latency percentiles.
//
// QVEC_SOAK_SECONDS sets the duration (default 20; `make soak` runs 600).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using Clock = std::chrono::steady_clock;
using testing_util::KeepAliveClient;
using testing_util::ServerProcess;
using testing_util::TempDir;
using testing_util::UnitVector;
using testing_util::VectorJson;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr size_t kDim = 64;
constexpr int kSearchers = 8;

int SoakSeconds() {
  const char* env = std::getenv("QVEC_SOAK_SECONDS");
  int n = env ? std::atoi(env) : 20;
  return n >= 15 ? n : 20;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

TEST(SoakTest, MixedLoadKeepsLatencyMemoryAndData) {
  const int seconds = SoakSeconds();
  TempDir dir;
  ServerProcess server(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(server.Start());
  const int port = server.port();
  {
    KeepAliveClient c(port);
    auto r = c.Call(
        "PUT", "/collections/soak",
        R"({"vectors":{"size":64,"distance":"Dot"},"qvec":{"index":{"ivf_threshold":5000}}})");
    ASSERT_EQ(r.status, 200) << r.body;
    // A base of 2000 points so searches have work from the start.
    std::mt19937_64 rng(5);
    for (int b = 0; b < 8; ++b) {
      std::string body = R"({"points":[)";
      for (int i = 0; i < 250; ++i) {
        const uint64_t id = 1000000 + b * 250 + i;
        if (i) body += ',';
        body += R"({"id":)" + std::to_string(id) + R"(,"vector":)" +
                VectorJson(UnitVector(rng, kDim)) + R"(,"payload":{"g":)" + std::to_string(i % 10) +
                "}}";
      }
      body += "]}";
      r = c.Call("PUT", "/collections/soak/points?wait=true", body);
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }

  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::mutex mu;
  std::string first_error;
  auto fail = [&](const std::string& what) {
    ++errors;
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = what;
  };
  std::vector<double> write_ms, search_ms;
  std::map<uint64_t, int> acked;  // id -> batch of its last acknowledged upsert

  // The writer: 10 batches of 10 points per second (~100 upserts/s) over a
  // fixed space of kIdSpace ids, so that after kIdSpace / 100 seconds every
  // write replaces a point and the data size is stable (memory growth beyond
  // that is a leak); plus one delete per second.
  constexpr uint64_t kIdSpace = 1000;
  std::thread writer([&] {
    KeepAliveClient c(port);
    std::mt19937_64 rng(11);
    std::vector<double> lat;
    std::map<uint64_t, int> model;
    uint64_t next = 0;
    for (int batch = 0; !stop && Clock::now() < end && batch < 1000000; ++batch) {
      const auto due = start + std::chrono::milliseconds(100) * batch;
      std::this_thread::sleep_until(due);
      std::string body = R"({"points":[)";
      std::vector<uint64_t> batch_ids;
      for (int i = 0; i < 10; ++i) {
        const uint64_t id = next++ % kIdSpace;
        if (i) body += ',';
        body += R"({"id":)" + std::to_string(id) + R"(,"vector":)" +
                VectorJson(UnitVector(rng, kDim)) + R"(,"payload":{"g":)" +
                std::to_string(id % 10) + R"(,"b":)" + std::to_string(batch) + "}}";
        batch_ids.push_back(id);
      }
      body += "]}";
      const auto t0 = Clock::now();
      auto r = c.Call("PUT", "/collections/soak/points?wait=true", body);
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (r.status != 200) {
        fail("upsert: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200));
        continue;
      }
      for (uint64_t id : batch_ids) model[id] = batch;
      if (batch % 10 == 9) {
        const uint64_t victim = rng() % kIdSpace;
        r = c.Call("POST", "/collections/soak/points/delete?wait=true",
                   R"({"points":[)" + std::to_string(victim) + "]}");
        if (r.status != 200) {
          fail("delete: HTTP " + std::to_string(r.status));
        } else {
          model.erase(victim);
        }
      }
    }
    std::lock_guard lock(mu);
    write_ms = std::move(lat);
    acked = std::move(model);
  });

  std::vector<std::thread> searchers;
  for (int s = 0; s < kSearchers; ++s) {
    searchers.emplace_back([&, s] {
      KeepAliveClient c(port);
      std::mt19937_64 rng(100 + s);
      std::vector<double> lat;
      for (int i = 0; !stop && Clock::now() < end && i < 10000000; ++i) {
        std::string body = R"({"vector":)" + VectorJson(UnitVector(rng, kDim)) + R"(,"limit":10)";
        if (i % 4 == 1) body += R"(,"filter":{"must":[{"key":"g","match":{"value":3}}]})";
        if (i % 4 == 2) body += R"(,"with_payload":true,"with_vector":true)";
        body += "}";
        const auto t0 = Clock::now();
        auto r = c.Call("POST", "/collections/soak/points/search", body);
        lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (r.status != 200 || testing_util::HitIds(r.body).empty()) {
          fail("search: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200));
        }
      }
      std::lock_guard lock(mu);
      search_ms.insert(search_ms.end(), lat.begin(), lat.end());
    });
  }

  // RSS samples: the first after a warm-up (the id space is full after 10 s;
  // at least a quarter of the run), the last at the end.
  const auto warm = start + std::chrono::seconds(std::max(10, seconds / 4));
  std::this_thread::sleep_until(warm);
  const size_t rss_early = testing_util::RssKib(server.pid());
  std::this_thread::sleep_until(end);
  const size_t rss_final = testing_util::RssKib(server.pid());
  stop = true;
  writer.join();
  for (auto& t : searchers) t.join();

  EXPECT_EQ(errors.load(), 0) << first_error;
  std::printf(
      "[ soak ] %d s: %zu upsert batches (p50 %.2f ms, p99 %.2f ms), %zu searches (p50 %.2f ms, "
      "p99 %.2f ms, %.0f/s), RSS %zu -> %zu KiB\n",
      seconds, write_ms.size(), Percentile(write_ms, 0.5), Percentile(write_ms, 0.99),
      search_ms.size(), Percentile(search_ms, 0.5), Percentile(search_ms, 0.99),
      search_ms.size() / static_cast<double>(seconds), rss_early, rss_final);
  ASSERT_GT(rss_early, 0u);
  if (!kSanitized) {  // ASan's quarantine and TSan's shadow memory grow by design
    EXPECT_LT(static_cast<double>(rss_final), rss_early * 1.10)
        << "resident memory grew by more than 10% after warm-up";
  }
  EXPECT_GT(write_ms.size(), static_cast<size_t>(seconds) * 5);  // the writer kept its pace

  // Every acknowledged point (and the base) is present with its last payload.
  std::string error;
  auto all = testing_util::ScrollAll(port, "soak", &error);
  ASSERT_TRUE(all) << error;
  for (const auto& [id, batch] : acked) {
    auto it = all->find(id);
    ASSERT_NE(it, all->end()) << "acknowledged point " << id << " missing";
    EXPECT_EQ(it->second.payload,
              R"({"g":)" + std::to_string(id % 10) + R"(,"b":)" + std::to_string(batch) + "}");
  }
  EXPECT_EQ(all->size(), acked.size() + 2000);
  EXPECT_EQ(testing_util::CountPoints(port, "soak"), static_cast<int64_t>(all->size()));
}

}  // namespace
}  // namespace qvec
