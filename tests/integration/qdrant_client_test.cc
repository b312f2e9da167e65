// Qdrant's official JavaScript client (@qdrant/js-client-rest, from npm)
// against a real qvec server started by the test.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

namespace fs = std::filesystem;
using testing_util::ServerProcess;
using testing_util::TempDir;

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Installs the pinned packages of tests/integration/package.json once per
// build tree (next to the binaries) and copies `script` there; returns that
// directory, or "" (with a failure) if npm failed. Skips without Node.js.
fs::path PrepareNode(const std::string& script) {
  std::string out;
  const fs::path node_dir = fs::path(QVEC_BINARY).parent_path().parent_path() / "node";
  fs::create_directories(node_dir);
  // ctest runs these tests in parallel: one installs while the others wait
  // (two npm installs into one directory break each other).
  const int lock_fd = open((node_dir / ".install.lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (lock_fd >= 0) flock(lock_fd, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) close(fd);  // releases the lock
    }
  } unlock{lock_fd};
  const fs::path source = fs::path(QVEC_SOURCE_DIR) / "tests/integration";
  // A changed package.json (new or bumped packages) installs again.
  std::error_code ec;
  const bool same_packages =
      fs::exists(node_dir / "package.json") &&
      fs::last_write_time(node_dir / "package.json", ec) >=
          fs::last_write_time(source / "package.json", ec) &&
      fs::exists(node_dir / "node_modules/@llamaindex/qdrant/package.json") &&
      fs::exists(node_dir / "node_modules/@langchain/qdrant/package.json") &&
      fs::exists(node_dir / "node_modules/@qdrant/js-client-rest/package.json") &&
      fs::exists(node_dir / "node_modules/puppeteer-core/package.json");
  fs::copy_file(source / script, node_dir / script, fs::copy_options::overwrite_existing);
  if (!same_packages) {
    fs::copy_file(source / "package.json", node_dir / "package.json",
                  fs::copy_options::overwrite_existing);
    int rc = RunCommand("cd '" + node_dir.string() +
                            "' && npm install --no-audit --no-fund --no-package-lock --loglevel=error",
                        &out);
    EXPECT_EQ(rc, 0) << "npm install failed:\n" << out;
    if (rc != 0) return {};
  }
  return node_dir;
}

void RunNodeAgainstServer(const std::string& script) {
  std::string out;
  if (RunCommand("node --version", &out) != 0) GTEST_SKIP() << "Node.js is not installed";
  const fs::path node_dir = PrepareNode(script);
  if (node_dir.empty()) return;
  TempDir dir;
  ServerProcess server(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(server.Start()) << "qvec did not start";
  out.clear();
  int rc = RunCommand("cd '" + node_dir.string() + "' && node " + script +
                          " http://127.0.0.1:" + std::to_string(server.port()),
                      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
}

TEST(QdrantJsClient, OfficialClientWorksWithoutWarnings) { RunNodeAgainstServer("qdrant_client.mjs"); }

// Collection and full snapshots: create, list, download, recover from a URL
// (into a new collection, and in place through an alias), multipart upload,
// corrupt/truncated/foreign files refused, delete.
TEST(QdrantJsClient, Snapshots) { RunNodeAgainstServer("snapshots.mjs"); }

// The points, payload, collection and filter surface (issue #14): payload
// and vector operations by ids and filter, batches, payload indexes of every
// type, every filter kind, scroll order_by, PATCH, aliases, MMR, refusals.
TEST(QdrantJsClient, PointsPayloadCollectionsAndFilters) { RunNodeAgainstServer("qdrant_api.mjs"); }

// The Query API (issue #15): prefetch, fusion, recommend, discover, context,
// order_by, sample, groups with lookups, facets, batches, older endpoints.
TEST(QdrantJsClient, QueryApi) { RunNodeAgainstServer("query_api.mjs"); }

// LangChain's and LlamaIndex's Qdrant vector stores, their standard flows:
// add, search with scores, metadata filters (LlamaIndex's operators and
// TEXT_MATCH), LangChain's server-side MMR, delete by ids, by filter and by
// reference document.
TEST(QdrantJsClient, LangChainAndLlamaIndexStores) { RunNodeAgainstServer("frameworks.mjs"); }

// The dashboard (issue #17) in headless chromium against a server with an
// API key: every page renders, the search console finds the expected point,
// a wrong key is named; screenshots under build/dashboard-shots/.
TEST(Dashboard, PagesRenderInChromium) {
  std::string out;
  if (RunCommand("node --version", &out) != 0) GTEST_SKIP() << "Node.js is not installed";
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "chromium is not installed";
  const fs::path node_dir = PrepareNode("dashboard.mjs");
  if (node_dir.empty()) return;
  TempDir dir;
  ServerProcess server(QVEC_BINARY, dir.Sub("data"), {"--api-key", "dashboard-test-key"});
  ASSERT_TRUE(server.Start()) << "qvec did not start";
  const fs::path shots = fs::path(QVEC_BINARY).parent_path().parent_path() / "dashboard-shots";
  out.clear();
  int rc = RunCommand("cd '" + node_dir.string() + "' && node dashboard.mjs http://127.0.0.1:" +
                          std::to_string(server.port()) + " dashboard-test-key '" +
                          shots.string() + "'",
                      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
}

}  // namespace
}  // namespace qvec
