#include "bench/sparse_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "index/sparse_index.h"
#include "qvec/database.h"

namespace qvec::bench {
namespace {

struct SparseOptions {
  size_t n = 500000;
  size_t vocab = 30522;  // BERT's word pieces, as SPLADE uses
  size_t doc_terms = 120;
  size_t query_terms = 25;
  size_t queries = 200;
  size_t engine_n = 200000;  // points loaded through the public API
  std::string path = "/var/tmp/qvec-bench-sparse";
  uint64_t seed = 42;
};

SparseOptions g_options;
CLI::App* g_command = nullptr;

// Vectors in CSR form (indices ascending within a row).
struct Csr {
  std::vector<uint64_t> begin{0};
  std::vector<uint32_t> idx;
  std::vector<float> val;
  size_t rows() const { return begin.size() - 1; }
  index::SparseView Row(size_t i) const {
    return {std::span<const uint32_t>(idx.data() + begin[i], begin[i + 1] - begin[i]),
            std::span<const float>(val.data() + begin[i], begin[i + 1] - begin[i])};
  }
};

// Terms drawn Zipf-like (rank r with probability ~ 1 / r), weighted as
// BM25 or SPLADE weigh them: rare terms heavier, with noise.
void Generate(Csr* out, size_t rows, size_t terms, const SparseOptions& o, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint32_t> row;
  for (size_t r = 0; r < rows; ++r) {
    row.clear();
    const size_t want = std::max<size_t>(1, terms / 2 + rng() % terms);
    while (row.size() < want) {
      // Inverse CDF of 1/r over [1, vocab]: r = vocab^u.
      const auto t = static_cast<uint32_t>(std::pow(static_cast<double>(o.vocab), u(rng)) - 1);
      row.push_back(std::min<uint32_t>(t, static_cast<uint32_t>(o.vocab - 1)));
      if (row.size() == want) {
        std::sort(row.begin(), row.end());
        row.erase(std::unique(row.begin(), row.end()), row.end());
      }
    }
    for (uint32_t t : row) {
      const double rarity = std::log1p(static_cast<double>(t)) / std::log1p(double(o.vocab));
      out->idx.push_back(t);
      out->val.push_back(static_cast<float>((0.1 + rarity) * (0.2 + u(rng))));
    }
    out->begin.push_back(out->idx.size());
  }
}

void KeepTop(std::vector<index::SparseHit>* all, size_t k) {
  auto better = [](const index::SparseHit& a, const index::SparseHit& b) {
    return a.score > b.score || (a.score == b.score && a.label < b.label);
  };
  if (all->size() > k) {
    std::partial_sort(all->begin(), all->begin() + k, all->end(), better);
    all->resize(k);
  } else {
    std::sort(all->begin(), all->end(), better);
  }
}

bool SameAnswer(const std::vector<index::SparseHit>& a, const std::vector<index::SparseHit>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::fabs(a[i].score - b[i].score) > 1e-4f * std::max(1.0f, std::fabs(b[i].score))) {
      return false;
    }
  }
  return true;
}

int Run(const SparseOptions& o) {
  std::mt19937_64 rng(o.seed);
  Progress::Get().Show("sparse: generating");
  Csr docs, queries;
  Generate(&docs, o.n, o.doc_terms, o, rng);
  Generate(&queries, o.queries, o.query_terms, o, rng);
  Progress::Get().Show("sparse: building the inverted index");
  auto start = Clock::now();
  index::SparseIndex inverted;
  for (size_t i = 0; i < docs.rows(); ++i) inverted.Set(i, docs.Row(i));
  const double build_s = SecondsSince(start);

  const size_t k = 10;
  std::vector<std::vector<index::SparseHit>> pruned(o.queries), taat(o.queries), brute(o.queries);
  index::SparseSearchStats stats;
  size_t list_entries = 0;
  Progress::Get().Show("sparse: MaxScore");
  start = Clock::now();
  for (size_t q = 0; q < o.queries; ++q) {
    pruned[q] = inverted.Search(queries.Row(q), k, nullptr, &stats);
  }
  const double pruned_s = SecondsSince(start);
  for (size_t q = 0; q < o.queries; ++q) {
    for (uint32_t t : queries.Row(q).indices) list_entries += inverted.DocFrequency(t);
  }

  // Term at a time over the same data, no pruning: per query dimension,
  // every document holding it (the posting lists as CSC).
  Progress::Get().Show("sparse: exhaustive inverted");
  std::vector<uint64_t> col_begin(o.vocab + 1, 0);
  for (uint32_t t : docs.idx) ++col_begin[t + 1];
  for (size_t t = 0; t < o.vocab; ++t) col_begin[t + 1] += col_begin[t];
  std::vector<uint32_t> col_doc(docs.idx.size());
  std::vector<float> col_val(docs.idx.size());
  {
    std::vector<uint64_t> fill(col_begin.begin(), col_begin.end() - 1);
    for (size_t d = 0; d < docs.rows(); ++d) {
      for (uint64_t e = docs.begin[d]; e < docs.begin[d + 1]; ++e) {
        const uint64_t at = fill[docs.idx[e]]++;
        col_doc[at] = static_cast<uint32_t>(d);
        col_val[at] = docs.val[e];
      }
    }
  }
  std::vector<float> acc(docs.rows());
  std::vector<uint8_t> touched(docs.rows());
  start = Clock::now();
  for (size_t q = 0; q < o.queries; ++q) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    std::fill(touched.begin(), touched.end(), 0);
    const index::SparseView qv = queries.Row(q);
    for (size_t i = 0; i < qv.indices.size(); ++i) {
      const uint32_t t = qv.indices[i];
      for (uint64_t e = col_begin[t]; e < col_begin[t + 1]; ++e) {
        acc[col_doc[e]] += qv.values[i] * col_val[e];
        touched[col_doc[e]] = 1;
      }
    }
    std::vector<index::SparseHit> all;
    for (size_t d = 0; d < docs.rows(); ++d) {
      if (touched[d]) all.push_back({d, acc[d]});
    }
    KeepTop(&all, k);
    taat[q] = std::move(all);
  }
  const double taat_s = SecondsSince(start);

  Progress::Get().Show("sparse: brute force");
  const size_t brute_queries = std::min<size_t>(o.queries, 50);
  start = Clock::now();
  for (size_t q = 0; q < brute_queries; ++q) {
    const index::SparseView qv = queries.Row(q);
    std::vector<index::SparseHit> all;
    for (size_t d = 0; d < docs.rows(); ++d) {
      const index::SparseView dv = docs.Row(d);
      bool shared = false;
      float s = 0;
      size_t i = 0, j = 0;
      while (i < qv.indices.size() && j < dv.indices.size()) {
        if (qv.indices[i] < dv.indices[j]) {
          ++i;
        } else if (qv.indices[i] > dv.indices[j]) {
          ++j;
        } else {
          s += qv.values[i++] * dv.values[j++];
          shared = true;
        }
      }
      if (shared) all.push_back({d, s});
    }
    KeepTop(&all, k);
    brute[q] = std::move(all);
  }
  const double brute_s = SecondsSince(start);

  size_t same_taat = 0, same_brute = 0;
  for (size_t q = 0; q < o.queries; ++q) same_taat += SameAnswer(pruned[q], taat[q]);
  for (size_t q = 0; q < brute_queries; ++q) same_brute += SameAnswer(pruned[q], brute[q]);

  // Through the engine: a collection with one sparse field.
  Progress::Get().Show("sparse: engine");
  std::filesystem::remove_all(o.path);
  double engine_load_s = 0, engine_ms = 0, dense_ms = 0, hybrid_ms = 0;
  constexpr size_t kDenseDim = 128;
  size_t engine_same = 0;
  const size_t en = std::min(o.engine_n, docs.rows());
  {
    auto db = Database::Open(DatabaseOptions(), o.path);
    if (!db.ok()) Die(db.status().ToString());
    CollectionConfig config;
    config.sparse_vectors["text"];
    config.vectors["dense"].dimension = kDenseDim;
    config.vectors["dense"].distance = Distance::kCosine;
    std::normal_distribution<float> gauss;
    if (Status s = (*db)->CreateCollection("sparse", config); !s.ok()) Die(s.ToString());
    auto c = (*db)->GetCollection("sparse").value();
    start = Clock::now();
    std::vector<Point> batch;
    for (size_t d = 0; d < en; ++d) {
      Point p;
      p.id = PointId::Num(d);
      const index::SparseView v = docs.Row(d);
      p.sparse_vectors["text"] = SparseVector{{v.indices.begin(), v.indices.end()},
                                              {v.values.begin(), v.values.end()}};
      auto& dense = p.vectors["dense"];
      dense.resize(kDenseDim);
      for (float& x : dense) x = gauss(rng);
      batch.push_back(std::move(p));
      if (batch.size() == 1000 || d + 1 == en) {
        if (Status s = c->Upsert(batch); !s.ok()) Die(s.ToString());
        batch.clear();
      }
    }
    engine_load_s = SecondsSince(start);
    index::SparseIndex reference;
    for (size_t d = 0; d < en; ++d) reference.Set(d, docs.Row(d));
    start = Clock::now();
    std::vector<std::vector<ScoredPoint>> got(o.queries);
    for (size_t q = 0; q < o.queries; ++q) {
      SearchRequest r;
      r.vector_name = "text";
      const index::SparseView qv = queries.Row(q);
      r.sparse_vector = SparseVector{{qv.indices.begin(), qv.indices.end()},
                                     {qv.values.begin(), qv.values.end()}};
      r.limit = k;
      auto hits = c->Search(r);
      if (!hits.ok()) Die(hits.status().ToString());
      got[q] = std::move(*hits);
    }
    engine_ms = SecondsSince(start) * 1000 / static_cast<double>(o.queries);
    // The dense retriever alone, then hybrid: both as prefetches of 50,
    // fused with RRF (what retrieval apps on Qdrant send).
    if (Status s = c->Optimize(); !s.ok()) Die(s.ToString());
    std::vector<std::vector<float>> dq(o.queries, std::vector<float>(kDenseDim));
    for (auto& q : dq) {
      for (float& x : q) x = gauss(rng);
    }
    start = Clock::now();
    for (size_t q = 0; q < o.queries; ++q) {
      SearchRequest r;
      r.vector_name = "dense";
      r.vector = dq[q];
      r.limit = k;
      if (auto hits = c->Search(r); !hits.ok()) Die(hits.status().ToString());
    }
    dense_ms = SecondsSince(start) * 1000 / static_cast<double>(o.queries);
    start = Clock::now();
    for (size_t q = 0; q < o.queries; ++q) {
      QueryRequest h;
      QueryRequest d, sp;
      d.vector_name = "dense";
      d.query.emplace();
      d.query->nearest.vector = dq[q];
      d.limit = 50;
      sp.vector_name = "text";
      sp.query.emplace();
      const index::SparseView qv = queries.Row(q);
      sp.query->nearest.sparse = SparseVector{{qv.indices.begin(), qv.indices.end()},
                                              {qv.values.begin(), qv.values.end()}};
      sp.limit = 50;
      h.prefetch = {d, sp};
      h.query.emplace();
      h.query->kind = QuerySpec::Kind::kFusion;
      h.limit = k;
      auto hits = c->Query(h);
      if (!hits.ok()) Die(hits.status().ToString());
      if (hits->size() != k) Die("hybrid query returned too few points");
    }
    hybrid_ms = SecondsSince(start) * 1000 / static_cast<double>(o.queries);
    for (size_t q = 0; q < o.queries; ++q) {
      std::vector<index::SparseHit> as_hits;
      for (const ScoredPoint& p : got[q]) as_hits.push_back({p.id.num(), p.score});
      engine_same += SameAnswer(as_hits, reference.Search(queries.Row(q), k, nullptr));
    }
  }
  std::filesystem::remove_all(o.path);
  Progress::Get().Break();

  auto ms = [&](double s, size_t nq) { return s * 1000 / static_cast<double>(nq); };
  fmt::print(
      "### Sparse vectors: exact top-{}\n\n{} SPLADE-like vectors (vocabulary {}, ~{} terms each, "
      "Zipf term frequencies, rarer terms weigh more), {} queries of ~{} terms; 1 thread. "
      "Inverted index built in {:.2f} s ({:.0f} MB).\n\n",
      k, o.n, o.vocab, o.doc_terms, o.queries, o.query_terms, build_s,
      static_cast<double>(inverted.MemoryBytes()) / 1e6);
  fmt::print("| method | ms / query | QPS | vs brute force | same top-{} |\n|---|--:|--:|--:|--:|\n", k);
  const double brute_ms = ms(brute_s, brute_queries);
  fmt::print("| brute-force scan of every vector | {:.2f} | {:.0f} | 1.0x | reference |\n", brute_ms,
             1000 / brute_ms);
  fmt::print("| inverted index, exhaustive (term at a time) | {:.2f} | {:.0f} | {:.1f}x | {}/{} |\n",
             ms(taat_s, o.queries), 1000 / ms(taat_s, o.queries), brute_ms / ms(taat_s, o.queries),
             same_taat, o.queries);
  fmt::print("| **qvec SparseIndex (MaxScore + block-max)** | {:.3f} | {:.0f} | {:.1f}x | {}/{} |\n",
             ms(pruned_s, o.queries), 1000 / ms(pruned_s, o.queries),
             brute_ms / ms(pruned_s, o.queries), same_brute, brute_queries);
  fmt::print(
      "| qvec engine Search ({} points, public API, ids + scores) | {:.3f} | {:.0f} | | {}/{} |\n",
      en, engine_ms, 1000 / engine_ms, engine_same, o.queries);
  fmt::print(
      "| qvec engine dense search ({} x {}, IVF) | {:.3f} | {:.0f} | | |\n"
      "| qvec engine hybrid query (dense 50 + sparse 50 prefetches, RRF) | {:.3f} | {:.0f} | | |\n",
      en, kDenseDim, dense_ms, 1000 / dense_ms, hybrid_ms, 1000 / hybrid_ms);
  fmt::print(
      "\nPruning read {:.1f} % of the query lists' {:.0f} entries per query (essential lists plus "
      "block lookups); the engine loaded {} points in {:.1f} s.\n\n",
      100.0 * static_cast<double>(stats.entries_scanned) / static_cast<double>(list_entries),
      static_cast<double>(list_entries) / static_cast<double>(o.queries), en, engine_load_s);
  return same_taat == o.queries && same_brute == brute_queries && engine_same == o.queries ? 0 : 1;
}

}  // namespace

void AddSparseCommand(CLI::App* app) {
  g_command = app->add_subcommand("sparse",
                                  "sparse vectors: qvec's inverted index vs exhaustive and "
                                  "brute-force scoring, and the engine's search");
  g_command->add_option("--n", g_options.n, "vectors")->capture_default_str();
  g_command->add_option("--vocab", g_options.vocab, "dimensions")->capture_default_str();
  g_command->add_option("--doc-terms", g_options.doc_terms, "mean nonzeros per vector")
      ->capture_default_str();
  g_command->add_option("--query-terms", g_options.query_terms, "mean nonzeros per query")
      ->capture_default_str();
  g_command->add_option("--queries", g_options.queries, "queries")->capture_default_str();
  g_command->add_option("--engine-n", g_options.engine_n, "points loaded into the engine")
      ->capture_default_str();
  g_command->add_option("--path", g_options.path, "database directory (removed before and after)")
      ->capture_default_str();
}

int RunParsedSparseCommand() {
  if (g_command == nullptr || !g_command->parsed()) return -1;
  return Run(g_options);
}

}  // namespace qvec::bench
