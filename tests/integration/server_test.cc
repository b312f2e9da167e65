// Tests against the real `qvec serve` process: the README's curl session,
// signals, persistence across restarts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "qvec/version.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using ::testing::HasSubstr;
using testing_util::HttpCall;
using testing_util::ServerProcess;
using testing_util::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunShell(const std::string& script, std::string* output) {
  FILE* pipe = popen(
      ("bash -c '" + std::regex_replace(script, std::regex("'"), "'\\''") + "' 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The README's first session must work verbatim (only the port differs).
TEST(ServerTest, ReadmeCurlSessionWorks) {
  std::string readme = ReadFile(std::string(QVEC_SOURCE_DIR) + "/README.md");
  size_t section = readme.find("## A first session with curl");
  ASSERT_NE(section, std::string::npos);
  size_t start = readme.find("```sh\n", section);
  ASSERT_NE(start, std::string::npos);
  start += 6;
  size_t end = readme.find("```", start);
  std::string script = readme.substr(start, end - start);

  TempDir dir;
  ServerProcess server(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(server.Start());
  script = std::regex_replace(script, std::regex("127\\.0\\.0\\.1:6333"),
                              "127.0.0.1:" + std::to_string(server.port()));
  std::string out;
  ASSERT_EQ(RunShell("set -e\n" + script, &out), 0) << out;
  // Create, upsert, search, filtered query: four answers, all ok.
  EXPECT_THAT(out, HasSubstr(R"({"result":true,"status":"ok")"));
  EXPECT_THAT(out, HasSubstr(R"("status":"completed")"));
  EXPECT_THAT(out, HasSubstr(R"({"result":[{"id":1,"version":0,"score":0.89)"));
  EXPECT_THAT(out, HasSubstr(R"({"result":{"points":[{"id":2,)"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("error")));
}

TEST(ServerTest, SigtermStopsCleanlyAndDataSurvivesRestart) {
  TempDir dir;
  {
    ServerProcess server(QVEC_BINARY, dir.Sub("data"));
    ASSERT_TRUE(server.Start());
    auto r = HttpCall(server.port(), "PUT", "/collections/c",
                      R"({"vectors":{"size":3,"distance":"Dot"}})");
    ASSERT_EQ(r.status, 200) << r.body;
    r = HttpCall(server.port(), "PUT", "/collections/c/points?wait=true",
                 R"({"points":[{"id":7,"vector":[1,2,3],"payload":{"k":"v"}}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    server.Kill(SIGTERM);
    int status = server.WaitExit(10000);
    ASSERT_NE(status, -1) << "qvec did not exit within 10 s of SIGTERM";
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  ServerProcess server(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(server.Start());
  auto r = HttpCall(server.port(), "GET", "/collections/c/points/7");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("payload":{"k":"v"},"vector":[1,2,3])"));
  server.Kill(SIGINT);
  int status = server.WaitExit(10000);
  ASSERT_NE(status, -1);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ServerTest, SecondServerOnTheSameDataFailsClearly) {
  TempDir dir;
  ServerProcess first(QVEC_BINARY, dir.Sub("data"));
  ASSERT_TRUE(first.Start());
  std::string out;
  int rc =
      RunShell(std::string(QVEC_BINARY) + " serve --data " + dir.Sub("data") + " --port 0", &out);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("in use"));
}

// Flags from a config file ([serve] section, TOML), the command line winning.
TEST(ServerTest, ConfigFileSetsFlags) {
  TempDir dir;
  const std::string config = dir.Sub("qvec.toml");
  {
    std::FILE* f = std::fopen(config.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("[serve]\napi-key = \"from-the-file\"\nport = 1\ncors-origin = [\"*\"]\n", f);
    std::fclose(f);
  }
  // ServerProcess passes --port and --data on the command line: they win.
  ServerProcess server(QVEC_BINARY, dir.Sub("data"), {"--config", config});
  ASSERT_TRUE(server.Start());
  EXPECT_EQ(HttpCall(server.port(), "GET", "/collections").status, 401);
  EXPECT_EQ(HttpCall(server.port(), "GET", "/collections", "", {"api-key: from-the-file"}).status,
            200);
}

// YAML config files: Qdrant's config.yaml shape (settings without a qvec
// equivalent are logged and have no effect), qvec's own `serve:` shape, and
// a setting that is no flag refused at start.
TEST(ServerTest, YamlConfigFiles) {
  TempDir dir;
  auto write = [&](const std::string& name, const char* text) {
    const std::string path = dir.Sub(name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
    return path;
  };
  const std::string qdrant = write("config.yaml",
                                   "service:\n  api_key: from-yaml\n  enable_cors: true\n"
                                   "  grpc_port: 6334\nstorage:\n  performance:\n"
                                   "    max_search_threads: 0\nlog_level: INFO\n");
  {
    ServerProcess server(QVEC_BINARY, dir.Sub("data"), {"--config", qdrant});
    ASSERT_TRUE(server.Start());
    EXPECT_EQ(HttpCall(server.port(), "GET", "/collections").status, 401);
    auto r = HttpCall(server.port(), "GET", "/collections", "",
                      {"api-key: from-yaml", "Origin: http://app.example"});
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.headers, HasSubstr("Access-Control-Allow-Origin: *"));
  }
  const std::string own = write("qvec.yml", "serve:\n  read-only-api-key: ro\n  api-key: rw\n");
  {
    ServerProcess server(QVEC_BINARY, dir.Sub("data"), {"--config", own});
    ASSERT_TRUE(server.Start());
    EXPECT_EQ(HttpCall(server.port(), "GET", "/collections", "", {"api-key: ro"}).status, 200);
    EXPECT_EQ(HttpCall(server.port(), "PUT", "/collections/x",
                       R"({"vectors":{"size":2,"distance":"Dot"}})", {"api-key: ro"})
                  .status,
              403);
  }
  std::string out;
  const std::string bad = write("bad.yaml", "serve:\n  colour: blue\n");
  EXPECT_NE(RunShell(std::string(QVEC_BINARY) + " serve --config " + bad, &out), 0);
  EXPECT_THAT(out, HasSubstr("serve.colour"));
  out.clear();
  const std::string broken = write("broken.yaml", "serve: [1, 2\n");
  EXPECT_NE(RunShell(std::string(QVEC_BINARY) + " serve --config " + broken, &out), 0);
  EXPECT_THAT(out, HasSubstr("config file"));
}

TEST(ServerTest, VersionAndHelp) {
  std::string out;
  EXPECT_EQ(RunShell(std::string(QVEC_BINARY) + " --version", &out), 0);
  // The one version of the build (CMake's project version), as the headers,
  // qvec::Version() and GET / give it.
  EXPECT_EQ(out, std::string("qvec ") + QVEC_VERSION_STRING + "\n");
  EXPECT_EQ(qvec::Version(), QVEC_VERSION_STRING);
  out.clear();
  EXPECT_EQ(RunShell(std::string(QVEC_BINARY) + " serve --help", &out), 0);
  for (const char* flag : {"--data", "--host", "--port", "--api-key", "--read-only-api-key"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace qvec
