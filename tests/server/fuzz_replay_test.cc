// The fuzz targets of tests/fuzz/ in the regular suite (no clang needed):
// replays the seed corpus, then a fixed-seed stream of mutated inputs
// (byte flips, insertions, deletions, dictionary tokens, splices). Real
// coverage-guided fuzzing runs with `make fuzz`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"

namespace qvec::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> LoadCorpus(const std::string& name) {
  std::vector<std::string> out;
  const fs::path dir = fs::path(QVEC_SOURCE_DIR) / "tests/fuzz/corpus" / name;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());  // a fixed order for a fixed seed
  for (const auto& p : files) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

std::vector<std::string> LoadDictionary() {
  std::vector<std::string> out;
  std::ifstream in(fs::path(QVEC_SOURCE_DIR) / "tests/fuzz/json.dict");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] != '"' || line.back() != '"') continue;
    std::string token;
    for (size_t i = 1; i + 1 < line.size(); ++i) {
      if (line[i] == '\\' && i + 2 < line.size()) ++i;
      token += line[i];
    }
    out.push_back(token);
  }
  return out;
}

// One random edit of `s` (never empty afterwards unless it was).
std::string Mutate(std::string s, const std::vector<std::string>& corpus,
                   const std::vector<std::string>& dict, std::mt19937_64& rng) {
  auto pos = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % (n + 1)); };
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 8) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // random byte
        s.insert(pos(s.size()), 1, static_cast<char>(rng() % 256));
        break;
      case 2: {  // delete a range
        if (s.empty()) break;
        size_t p = rng() % s.size();
        s.erase(p, 1 + rng() % std::min<size_t>(16, s.size() - p));
        break;
      }
      case 3: {  // duplicate a range
        if (s.empty()) break;
        size_t p = rng() % s.size();
        size_t n = 1 + rng() % std::min<size_t>(64, s.size() - p);
        s.insert(pos(s.size()), s.substr(p, n));
        break;
      }
      case 4:  // dictionary token
        s.insert(pos(s.size()), dict[rng() % dict.size()]);
        break;
      case 5: {  // splice with another corpus item
        const std::string& other = corpus[rng() % corpus.size()];
        size_t a = pos(s.size()), b = pos(other.size());
        s = s.substr(0, a) + other.substr(b);
        break;
      }
      case 6: {  // replace a digit run with an extreme number
        static const char* kNumbers[] = {"1e39",
                                         "-1e39",
                                         "1e308",
                                         "4294967296",
                                         "-1",
                                         "0",
                                         "18446744073709551615",
                                         "9223372036854775808",
                                         "1.5",
                                         "65537",
                                         "1e-320",
                                         "100001"};
        size_t p = s.find_first_of("0123456789", s.empty() ? 0 : rng() % s.size());
        if (p == std::string::npos) break;
        size_t q = s.find_first_not_of("0123456789.e-", p);
        s.replace(p, (q == std::string::npos ? s.size() : q) - p, kNumbers[rng() % 12]);
        break;
      }
      default: {  // swap two bytes
        if (s.size() < 2) break;
        std::swap(s[rng() % s.size()], s[rng() % s.size()]);
        break;
      }
    }
  }
  return s;
}

// Runs the corpus and `mutations` mutated inputs; returns how many inputs
// yielded each result of `target`.
std::map<unsigned, int> Replay(const std::string& name, unsigned (*target)(const uint8_t*, size_t),
                               int mutations, uint64_t seed) {
  std::map<unsigned, int> results;
  const auto corpus = LoadCorpus(name);
  EXPECT_GE(corpus.size(), 10u) << name;
  const auto dict = LoadDictionary();
  EXPECT_FALSE(dict.empty());
  if (corpus.empty() || dict.empty()) return results;
  for (const auto& input : corpus) {
    ++results[target(reinterpret_cast<const uint8_t*>(input.data()), input.size())];
  }
  std::mt19937_64 rng(seed);
  for (int i = 0; i < mutations; ++i) {
    std::string input = Mutate(corpus[rng() % corpus.size()], corpus, dict, rng);
    ++results[target(reinterpret_cast<const uint8_t*>(input.data()), input.size())];
  }
  return results;
}

void Print(const std::string& name, const std::map<unsigned, int>& results) {
  std::string line = "[ fuzz ] " + name + " results:";
  for (const auto& [k, n] : results) line += " " + std::to_string(k) + "x" + std::to_string(n);
  std::printf("%s\n", line.c_str());
}

TEST(FuzzReplayTest, JsonRequestCorpusAndMutations) {
  auto results = Replay("json_request", &FuzzJsonRequest, 100000, 1);
  Print("json_request (1 = parsed)", results);
  EXPECT_GT(results[1], 1000);  // the mutations reach the decoders
}

TEST(FuzzReplayTest, RouterCorpusAndMutations) {
  auto results = Replay("router", &FuzzRouter, 30000, 2);
  Print("router (HTTP status)", results);
  EXPECT_GT(results[200], 1000);  // and the engine
  EXPECT_EQ(results[500], 0);
}

}  // namespace
}  // namespace qvec::fuzz
