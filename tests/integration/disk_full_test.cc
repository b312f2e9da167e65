// A full disk degrades writes, never the process: writes answer 507 with a
// message that says the disk is full, reads go on, snapshots are refused
// instead of aborting, and writes resume by themselves once space is freed,
// with every acknowledged write kept. Runs the real server on a small tmpfs
// (needs root to mount it; skipped otherwise).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/util/qvec_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::CountPoints;
using testing_util::HttpCall;
using testing_util::HttpResult;
using testing_util::ServerProcess;
using testing_util::TempDir;
using testing_util::VectorJson;

// Writes `mib` MiB into `path` (all that fits when mib < 0).
void Fill(const std::string& path, int mib) {
  std::ofstream out(path, std::ios::binary);
  const std::string chunk(1 << 20, 'x');
  for (int i = 0; mib < 0 || i < mib; ++i) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    out.flush();
    if (!out) break;
  }
}

std::string Batch(uint64_t first, size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::string body = "{\"points\":[";
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> v(256);
    for (auto& x : v) x = u(rng);
    body += (i ? "," : "") + std::string("{\"id\":") + std::to_string(first + i) +
            ",\"vector\":" + VectorJson(v) + ",\"payload\":{\"text\":\"" + std::string(200, 'p') +
            "\"}}";
  }
  return body + "]}";
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = dir_.Sub("mnt");
    std::filesystem::create_directories(mnt_);
    if (mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=64m") != 0) {
      GTEST_SKIP() << "needs root to mount a 64 MiB tmpfs (the disk-full test is skipped)";
    }
    mounted_ = true;
  }
  void TearDown() override {
    server_.reset();
    if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
  }

  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(DiskFullTest, WritesRefusedReadsServedNoAbortAndWritesResume) {
  Fill(mnt_ + "/filler", 36);
  server_ = std::make_unique<ServerProcess>(QVEC_BINARY, mnt_ + "/data",
                                            std::vector<std::string>{"--min-free-disk-mib", "4"});
  ASSERT_TRUE(server_->Start());
  const int port = server_->port();
  ASSERT_EQ(
      HttpCall(port, "PUT", "/collections/c", R"({"vectors":{"size":256,"distance":"Cosine"}})")
          .status,
      200);
  std::mt19937_64 rng(7);
  uint64_t acked = 0;
  HttpResult refused;
  for (int b = 0; b < 400; ++b) {
    auto r = HttpCall(port, "PUT", "/collections/c/points?wait=true", Batch(acked, 100, rng));
    if (r.status == 200) {
      acked += 100;
      continue;
    }
    refused = r;
    break;
  }
  ASSERT_EQ(refused.status, 507) << refused.body;
  EXPECT_NE(refused.body.find("disk full"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.body.find(mnt_), std::string::npos) << "message names a server path";
  ASSERT_GT(acked, 0u);

  // Reads go on.
  EXPECT_EQ(CountPoints(port, "c"), static_cast<int64_t>(acked));
  auto scroll = HttpCall(port, "POST", "/collections/c/points/scroll", R"({"limit":5})");
  EXPECT_EQ(scroll.status, 200) << scroll.body;

  // Now nothing at all is left: RocksDB's own flushes and compactions fail.
  Fill(mnt_ + "/filler2", -1);
  for (int i = 0; i < 3; ++i) {
    auto w =
        HttpCall(port, "PUT", "/collections/c/points?wait=true", Batch(900000 + i * 10, 10, rng));
    EXPECT_EQ(w.status, 507) << w.body;
  }
  // A failed create, then a snapshot: refused, not an abort.
  auto create =
      HttpCall(port, "PUT", "/collections/d", R"({"vectors":{"size":4,"distance":"Dot"}})");
  EXPECT_EQ(create.status, 507) << create.body;
  auto snap = HttpCall(port, "POST", "/collections/c/snapshots");
  EXPECT_TRUE(snap.status == 507 || snap.status == 503) << snap.status << " " << snap.body;
  EXPECT_EQ(snap.body.find(mnt_), std::string::npos) << "message names a server path";
  EXPECT_EQ(HttpCall(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(CountPoints(port, "c"), static_cast<int64_t>(acked));

  // Space returns: writes resume by themselves within seconds.
  std::filesystem::remove(mnt_ + "/filler");
  std::filesystem::remove(mnt_ + "/filler2");
  const auto freed = std::chrono::steady_clock::now();
  bool resumed = false;
  while (std::chrono::steady_clock::now() - freed < std::chrono::seconds(10)) {
    auto r = HttpCall(port, "PUT", "/collections/c/points?wait=true", Batch(acked, 100, rng));
    if (r.status == 200) {
      acked += 100;
      resumed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - freed).count();
  std::printf("writes resumed %.2f s after space was freed\n", secs);
  ASSERT_TRUE(resumed) << "writes did not resume within 10 s of freeing space";
  EXPECT_EQ(HttpCall(port, "POST", "/collections/c/snapshots").status, 200);

  // A clean shutdown (no abort), and every acknowledged write after restart.
  server_->Kill(SIGTERM);
  const int status = server_->WaitExit(20000);
  ASSERT_TRUE(WIFEXITED(status)) << "server did not exit cleanly: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  server_ = std::make_unique<ServerProcess>(QVEC_BINARY, mnt_ + "/data");
  ASSERT_TRUE(server_->Start());
  EXPECT_EQ(CountPoints(server_->port(), "c"), static_cast<int64_t>(acked));
}

}  // namespace
}  // namespace qvec
