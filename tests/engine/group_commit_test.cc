// Group commit: writes queued behind a leader are committed in one RocksDB
// batch (one fsync with sync_writes), each one keeping its own outcome, in
// queue order, and never a point touched twice in one group. The test holds
// the collection's write lock (through a test peer) so that writers queue
// deterministically, then releases it and counts the commits.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "engine/collection_impl.h"
#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec::engine {

class CollectionImplTestPeer {
 public:
  explicit CollectionImplTestPeer(Collection* c) : c_(dynamic_cast<CollectionImpl*>(c)) {}
  bool ok() const { return c_ != nullptr; }
  void LockWrites() QVEC_NO_THREAD_SAFETY_ANALYSIS { c_->write_mu_.Lock(); }
  void UnlockWrites() QVEC_NO_THREAD_SAFETY_ANALYSIS { c_->write_mu_.Unlock(); }
  size_t Queued() {
    MutexLock lock(&c_->queue_mu_);
    return c_->write_queue_.size();
  }
  uint64_t Commits() const { return c_->commits_.load(); }

 private:
  CollectionImpl* c_;
};

namespace {

using testing_util::TempDir;

Point MakePoint(uint64_t id, float x, const std::string& payload) {
  Point p;
  p.id = PointId::Num(id);
  p.vector = {x, 1.0f, 0.5f, -1.0f};
  p.payload = payload;
  return p;
}

class GroupCommitTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    DatabaseOptions o;
    o.sync_writes = GetParam();
    db_ = Database::Open(o, dir_.path()).value();
    CollectionConfig c;
    c.dimension = 4;
    c.distance = Distance::kDot;
    ASSERT_TRUE(db_->CreateCollection("c", c).ok());
    coll_ = db_->GetCollection("c").value();
    // The first write calibrates nothing (per-vector codes) but is committed
    // alone; start from a non-empty collection.
    ASSERT_TRUE(coll_->Upsert(std::vector<Point>{MakePoint(1000, 1, "")}).ok());
  }

  // Waits until `n` writes are queued.
  void WaitQueued(CollectionImplTestPeer& peer, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (peer.Queued() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(peer.Queued(), n);
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> coll_;
};

TEST_P(GroupCommitTest, QueuedWritesCommitOnceAndKeepTheirOwnOutcome) {
  CollectionImplTestPeer peer(coll_.get());
  ASSERT_TRUE(peer.ok());
  const uint64_t before = peer.Commits();
  peer.LockWrites();
  constexpr int kWriters = 12;
  std::vector<Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      if (t == 5) {
        // Rejected under the lock (no such point): the others still commit.
        Point p = MakePoint(999999, 1, "");
        results[t] = coll_->UpdateVectors(std::vector<Point>{p});
      } else if (t == 7) {
        auto n = coll_->Delete(std::vector<PointId>{PointId::Num(1000)});
        results[t] = n.ok() && *n == 1 ? Status::Ok() : InternalError("delete");
      } else if (t == 9) {
        results[t] = coll_->SetPayload(std::vector<PointId>{PointId::Num(3)}, "{\"set\":1}", false);
      } else {
        results[t] = coll_->Upsert(std::vector<Point>{
            MakePoint(t, static_cast<float>(t), "{\"t\":" + std::to_string(t) + "}")});
      }
    });
    // One at a time, so that the queue order is the thread order.
    WaitQueued(peer, t + 1);
  }
  peer.UnlockWrites();
  for (auto& th : threads) th.join();
  // Two groups: threads 0-8 touch distinct points; thread 9 sets a payload
  // on point 3, which thread 3 wrote in the group, so it starts the next.
  EXPECT_EQ(peer.Commits() - before, 2u);
  for (int t = 0; t < kWriters; ++t) {
    if (t == 5) {
      EXPECT_EQ(results[t].code(), StatusCode::kNotFound);
    } else {
      EXPECT_TRUE(results[t].ok()) << t << ": " << results[t].ToString();
    }
  }
  // Thread 9's merge saw thread 3's upsert.
  auto got = coll_->Get(std::vector<PointId>{PointId::Num(3)}, true, false);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front().payload.value_or(""), "{\"t\":3,\"set\":1}");
  EXPECT_EQ(*coll_->Count(nullptr), size_t{kWriters - 3});  // 9 upserts, 1000 deleted
}

TEST_P(GroupCommitTest, AWriteToAPointAlreadyInTheGroupWaitsForTheNextOne) {
  CollectionImplTestPeer peer(coll_.get());
  const uint64_t before = peer.Commits();
  peer.LockWrites();
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      // Threads 0..5 write points 1, 2, 1, 3, 2, 4: thread 2 repeats point 1
      // and starts a second group, which threads 3-5 join (point 2 is not in
      // that group yet).
      const uint64_t ids[] = {1, 2, 1, 3, 2, 4};
      EXPECT_TRUE(coll_
                      ->Upsert(std::vector<Point>{
                          MakePoint(ids[t], 1, "{\"w\":" + std::to_string(t) + "}")})
                      .ok());
    });
    WaitQueued(peer, t + 1);
  }
  peer.UnlockWrites();
  for (auto& th : threads) th.join();
  // Groups {0, 1}, {2, 3, 4, 5}: applied in queue order.
  EXPECT_EQ(peer.Commits() - before, 2u);
  auto got = coll_->Get(std::vector<PointId>{PointId::Num(1), PointId::Num(2)}, true, false);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].payload.value_or(""), "{\"w\":2}");
  EXPECT_EQ((*got)[1].payload.value_or(""), "{\"w\":4}");
}

TEST_P(GroupCommitTest, ConcurrentWritersLoseNothing) {
  // Free-running writers (no lock held by the test): every acknowledged
  // point is there, once, with its last payload.
  constexpr int kThreads = 8, kPerThread = 60;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const uint64_t id = static_cast<uint64_t>(10000 + t * 100 + i % 20);
        Status s = coll_->Upsert(std::vector<Point>{
            MakePoint(id, static_cast<float>(i), "{\"i\":" + std::to_string(i) + "}")});
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*coll_->Count(nullptr), size_t{kThreads * 20 + 1});
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < 20; ++k) {
      auto got = coll_->Get(std::vector<PointId>{PointId::Num(10000 + t * 100 + k)}, true, false);
      ASSERT_EQ(got->size(), 1u);
      EXPECT_EQ(got->front().payload.value_or(""),
                "{\"i\":" + std::to_string(kPerThread - 20 + k) + "}");
    }
  }
}

// The vector of point i of batch t: batch t spans [-2^-t, 2^-t].
std::vector<float> CalibrationVector(int t, int i) {
  const float a = 1.0f / static_cast<float>(1 << t);
  return {a * static_cast<float>(i) / 4.0f, -a * static_cast<float>(i) / 4.0f, a, 0.3f * a};
}

TEST_P(GroupCommitTest, AFirstCalibrationIsAppliedBeforeTheNextWriteBuilds) {
  // A calibrated collection: the first write calibrates; writes queued
  // behind it (each calibrated on its own batch before queueing) must be
  // encoded with the calibration the first installed, which the queries are
  // encoded with too. A batch encoded with its own (narrower) calibration
  // would have codes twice to eight times too large, far from the query.
  CollectionConfig c;
  c.dimension = 4;
  c.distance = Distance::kEuclid;
  c.quantization.type = QuantizationOptions::Type::kUint8;
  c.quantization.granularity = QuantizationOptions::Granularity::kPerCollection;
  ASSERT_TRUE(db_->CreateCollection("cal", c).ok());
  auto cal = db_->GetCollection("cal").value();
  CollectionImplTestPeer peer(cal.get());
  const uint64_t before = peer.Commits();
  peer.LockWrites();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Point> pts;
      for (int i = 0; i < 5; ++i) {
        Point p;
        p.id = PointId::Num(t * 10 + i);
        p.vector = CalibrationVector(t, i);
        pts.push_back(p);
      }
      EXPECT_TRUE(cal->Upsert(pts).ok());
    });
    WaitQueued(peer, t + 1);
  }
  peer.UnlockWrites();
  for (auto& th : threads) th.join();
  // The calibrating write alone, then the other three together.
  EXPECT_EQ(peer.Commits() - before, 2u);
  // Int8 distances (no rescoring) to a query inside the calibrated range
  // match the float ones for every point. (Near zero, a Euclidean int8
  // estimate has a large relative error; this query is away from all.)
  SearchRequest r;
  r.vector = {-0.9f, 0.9f, -0.5f, -0.3f};
  r.limit = 20;
  r.params.rescore = false;
  r.params.exact = true;
  auto hits = cal->Search(r);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 20u);
  for (const ScoredPoint& h : *hits) {
    const int t = static_cast<int>(h.id.num() / 10), i = static_cast<int>(h.id.num() % 10);
    const std::vector<float> x = CalibrationVector(t, i);
    double d2 = 0;
    for (size_t j = 0; j < 4; ++j)
      d2 += (double(r.vector[j]) - x[j]) * (double(r.vector[j]) - x[j]);
    EXPECT_NEAR(h.score, std::sqrt(d2), 0.02 * std::sqrt(d2)) << "batch " << t << " point " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(SyncWrites, GroupCommitTest, ::testing::Bool());

}  // namespace
}  // namespace qvec::engine
