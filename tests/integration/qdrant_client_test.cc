// Qdrant's official JavaScript client (@qdrant/js-client-rest, from npm)
// against a real qvec server started by the test.
#include <gtest/gtest.h>

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

TEST(QdrantJsClient, OfficialClientWorksWithoutWarnings) {
  std::string out;
  if (RunCommand("node --version", &out) != 0) GTEST_SKIP() << "Node.js is not installed";
  // Install the pinned client once per build tree, next to the binaries.
  const fs::path node_dir = fs::path(QVEC_BINARY).parent_path().parent_path() / "node";
  fs::create_directories(node_dir);
  fs::copy_file(fs::path(QVEC_SOURCE_DIR) / "tests/integration/package.json",
                node_dir / "package.json", fs::copy_options::overwrite_existing);
  fs::copy_file(fs::path(QVEC_SOURCE_DIR) / "tests/integration/qdrant_client.mjs",
                node_dir / "qdrant_client.mjs", fs::copy_options::overwrite_existing);
  if (!fs::exists(node_dir / "node_modules/@qdrant/js-client-rest/package.json")) {
    out.clear();
    int rc =
        RunCommand("cd '" + node_dir.string() +
                       "' && npm install --no-audit --no-fund --no-package-lock --loglevel=error",
                   &out);
    ASSERT_EQ(rc, 0) << "npm install failed:\n" << out;
  }

  TempDir dir;
  ServerProcess server(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(server.Start()) << "qvec did not start";
  out.clear();
  int rc = RunCommand("cd '" + node_dir.string() + "' && node qdrant_client.mjs http://127.0.0.1:" +
                          std::to_string(server.port()),
                      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
}

}  // namespace
}  // namespace qvec
