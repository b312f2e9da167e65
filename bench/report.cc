#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "bench/bench_util.h"
#include "engine/json_writer.h"

namespace qvec::bench {

namespace {

std::string Recall(double r) { return std::isnan(r) ? "-" : fmt::format("{:.4f}", r); }

std::string Qps(double q) {
  if (q <= 0) return "-";
  if (q >= 100) return fmt::format("{:.0f}", q);
  return fmt::format("{:.1f}", q);
}

std::string Micros(double us) {
  if (us >= 10000) return fmt::format("{:.0f}", us);
  if (us >= 100) return fmt::format("{:.0f}", us);
  return fmt::format("{:.1f}", us);
}

std::string JsonString(const std::string& s) {
  std::string out;
  engine::JsonWriter::AppendQuoted(out, s);
  return out;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.6g}", v);
}

// Rows of one point (same dataset, method, params) by thread count.
struct Point {
  const Row* all = nullptr;  // most threads
  const Row* one = nullptr;  // 1 thread
};

std::vector<Point> Points(const std::vector<Row>& rows, const std::string& dataset) {
  std::vector<Point> points;
  std::map<std::string, size_t> at;
  for (const Row& r : rows) {
    if (r.dataset != dataset) continue;
    const std::string key = r.method + "\x1f" + r.params;
    auto [it, inserted] = at.emplace(key, points.size());
    if (inserted) points.emplace_back();
    Point& p = points[it->second];
    if (r.threads == 1) p.one = &r;
    if (p.all == nullptr || r.threads >= p.all->threads) p.all = &r;
  }
  return points;
}

// Plot colors: qvec IVF warm, FAISS IVF blue, hnswlib green, flat methods
// muted.
std::string ColorOf(const std::string& method) {
  const bool rescore = method.find("rescore") != std::string::npos;
  if (method.rfind("qvec IVF", 0) == 0) return rescore ? "#ff7f0e" : "#d62728";
  if (method.rfind("FAISS IVFFlat", 0) == 0) return "#1f77b4";
  if (method.rfind("FAISS IVFSQ8", 0) == 0) return "#17becf";
  if (method.rfind("hnswlib", 0) == 0) return "#2ca02c";
  if (method.rfind("FAISS IndexFlat", 0) == 0) return "#7f7f7f";
  if (method.rfind("qvec flat float32", 0) == 0) return "#000000";
  if (method.rfind("qvec flat int8", 0) == 0) return rescore ? "#c5b0d5" : "#9467bd";
  if (method.rfind("qvec flat uint8", 0) == 0) return rescore ? "#e377c2" : "#8c564b";
  return "#bcbd22";
}

}  // namespace

std::string MarkdownReport(const RunInfo& info, const std::vector<Row>& rows) {
  std::string out;
  out += fmt::format("qvec-bench {} — {} — {}; load average {:.2f} at start\n\n", info.mode,
                     info.started, info.machine, info.load_average);
  out += fmt::format("Measured at the start of this run: {}.\n\n", DescribeLimits(info.limits));
  const size_t t = info.threads;
  for (const DatasetSummary& d : info.datasets) {
    out += fmt::format("### {} ({} × {}, {} queries, {})\n\n", d.name, d.n, d.dim, d.nq, d.metric);
    out += fmt::format(
        "| method | params | R@1 | R@10 | R@100 | QPS 1t | QPS {t}t | batch QPS 1t | batch QPS "
        "{t}t | p50 µs | p95 µs | p99 µs | build s | memory MB | × FAISS flat (1q / batch, "
        "{t}t) |\n",
        fmt::arg("t", t));
    out += "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const Point& p : Points(rows, d.name)) {
      const Row& a = *p.all;
      const Row* one = p.one ? p.one : p.all;
      out += fmt::format(
          "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2f} | {:.1f} | "
          "{:.2f} / {:.2f} |\n",
          a.method, a.params, Recall(a.recall_at_1), Recall(a.recall_at_10),
          Recall(a.recall_at_100), Qps(one->qps), Qps(a.qps), Qps(one->qps_batch), Qps(a.qps_batch),
          Micros(a.p50_us), Micros(a.p95_us), Micros(a.p99_us), a.build_s,
          static_cast<double>(a.memory_bytes) / 1e6, a.qps_vs_faiss_flat,
          a.qps_batch_vs_faiss_flat);
    }
    out += "\n";
  }
  return out;
}

namespace {

// The fastest point of `method_prefix` rows (all points of a method family
// when the prefix is a family name) with recall@10 >= min_recall, by `qps`
// of the rows with `threads` threads.
const Row* Fastest(const std::vector<Row>& rows, const std::string& dataset,
                   const std::string& family, const std::string& method_prefix, size_t threads,
                   double min_recall, bool batch) {
  const Row* best = nullptr;
  for (const Row& r : rows) {
    if (r.dataset != dataset || r.family != family || r.threads != threads) continue;
    if (r.method.rfind(method_prefix, 0) != 0 || !(r.recall_at_10 >= min_recall)) continue;
    const double q = batch ? r.qps_batch : r.qps;
    if (best == nullptr || q > (batch ? best->qps_batch : best->qps)) best = &r;
  }
  return best;
}

const Row* Find(const std::vector<Row>& rows, const std::string& dataset, const std::string& method,
                size_t threads) {
  for (const Row& r : rows) {
    if (r.dataset == dataset && r.method == method && r.threads == threads) return &r;
  }
  return nullptr;
}

std::string Verdict(bool met) { return met ? "**met**" : "**missed**"; }

}  // namespace

std::string TargetsReport(const RunInfo& info, const std::vector<Row>& rows) {
  std::string out = "### Targets\n\n";
  const size_t all = info.threads;
  for (const DatasetSummary& d : info.datasets) {
    out += fmt::format("**{}**\n\n", d.name);
    // IVF at recall@10 >= 0.95: fastest qualifying point of each family.
    const char* kinds[][2] = {{"1 query/call, 1 thread", "1"},
                              {"1 query/call, all threads", "a"},
                              {"batch, 1 thread", "b1"},
                              {"batch, all threads", "ba"}};
    bool any_ivf = false;
    for (const auto& kind : kinds) {
      const std::string k = kind[1];
      const size_t threads = (k == "1" || k == "b1") ? 1 : all;
      const bool batch = k[0] == 'b';
      const Row* q = Fastest(rows, d.name, "qvec-ivf", "qvec IVF", threads, 0.95, batch);
      if (q == nullptr) continue;
      any_ivf = true;
      auto qps = [&](const Row* r) { return batch ? r->qps_batch : r->qps; };
      std::string line = fmt::format("- IVF at recall@10 ≥ 0.95, {}: qvec {:.0f} QPS ({}, {})",
                                     kind[0], qps(q), q->method, q->params);
      struct Target {
        const char* family;
        const char* name;
        double factor;
      };
      // hnswlib: issue 18's targets, >= 2x on Fashion-MNIST, >= 3x on the
      // synthetic sets.
      const double hnsw_factor = d.name == "fashion-mnist" ? 2.0 : 3.0;
      for (const Target& t : {Target{"faiss-ivfsq8", "FAISS IVFSQ8", 4.0},
                              Target{"faiss-ivfflat", "FAISS IVFFlat", 2.0},
                              Target{"hnswlib", "hnswlib", hnsw_factor}}) {
        const Row* f = Fastest(rows, d.name, t.family, "", threads, 0.95, batch);
        if (f == nullptr) {
          line += fmt::format("; {}: never reached 0.95", t.name);
          continue;
        }
        const double ratio = qps(q) / qps(f);
        line += fmt::format("; vs {} {:.0f} ({}): {:.2f}× (target ≥ {:g}×: {})", t.name, qps(f),
                            f->params, ratio, t.factor, Verdict(ratio >= t.factor));
      }
      out += line + "\n";
    }
    if (any_ivf) {
      const Row* q = Fastest(rows, d.name, "qvec-ivf", "qvec IVF", all, 0.0, false);
      const Row* h = Fastest(rows, d.name, "hnswlib", "", all, 0.0, false);
      const Row* f = Fastest(rows, d.name, "faiss-ivfflat", "", all, 0.0, false);
      const Row* s = Fastest(rows, d.name, "faiss-ivfsq8", "", all, 0.0, false);
      if (q && h) {
        const double share = static_cast<double>(q->memory_bytes) / h->memory_bytes;
        out += fmt::format(
            "- IVF memory: qvec {:.1f} MB vs hnswlib {:.1f} MB = {:.0f}% (target ≤ 30%: {})\n",
            q->memory_bytes / 1e6, h->memory_bytes / 1e6, 100 * share, Verdict(share <= 0.30));
      }
      if (q && f) {
        out += fmt::format(
            "- IVF train + add: qvec {:.1f} s vs FAISS IVFFlat {:.1f} s{} (target: no slower: "
            "{})\n",
            q->build_s, f->build_s, s ? fmt::format(", IVFSQ8 {:.1f} s", s->build_s) : "",
            Verdict(q->build_s <= f->build_s));
      }
    } else if (Fastest(rows, d.name, "qvec-ivf", "qvec IVF", all, 0.0, false)) {
      out += "- IVF: qvec never reached recall@10 0.95 in the sweep (**missed**)\n";
    }
    // Flat targets.
    const Row* faiss = Find(rows, d.name, "FAISS IndexFlatIP", all);
    const Row* int8 = Find(rows, d.name, "qvec flat int8", all);
    if (faiss && int8) {
      const double gbs = int8->qps * static_cast<double>(d.n) * static_cast<double>(d.dim) / 1e9;
      out += fmt::format(
          "- Flat int8, 1 query/call, {} threads: {:.0f} QPS = {:.1f}× FAISS IndexFlatIP (target ≥ "
          "10×: {}); codes scanned {:.1f} GB/s = {:.0f}% of the {:.1f} GB/s DRAM read measured "
          "on {} threads in this run (target ≥ 70%: {})\n",
          all, int8->qps, int8->qps / faiss->qps, Verdict(int8->qps >= 10 * faiss->qps), gbs,
          100 * gbs / info.limits.read_gbs_all, info.limits.read_gbs_all, info.limits.threads,
          Verdict(gbs >= 0.7 * info.limits.read_gbs_all));
      const double code_bytes = static_cast<double>(d.n) * static_cast<double>(d.dim);
      if (info.limits.l3_bytes > 0 && code_bytes <= 1.5 * static_cast<double>(info.limits.l3_bytes)) {
        out += fmt::format(
            "  (the {:.0f} MB of codes are within reach of the {:.0f} MB L3: partly cache-resident, "
            "so above the DRAM figure)\n",
            code_bytes / 1e6, info.limits.l3_bytes / 1e6);
      }
      out += fmt::format(
          "- Flat int8, batch, {} threads: {:.0f} QPS = {:.1f}× FAISS batch (target ≥ 3×: {})\n",
          all, int8->qps_batch, int8->qps_batch / faiss->qps_batch,
          Verdict(int8->qps_batch >= 3 * faiss->qps_batch));
    }
    const Row* u8 = Find(rows, d.name, "qvec flat uint8", all);
    const Row* u8r = Find(rows, d.name, "qvec flat uint8 + rescore", all);
    const Row* i8r = Find(rows, d.name, "qvec flat int8 + rescore", all);
    if (u8) {
      out += fmt::format(
          "- Flat recall@10 without rescoring: uint8 asymmetric {:.4f}{} (target ≥ 0.97: {})\n",
          u8->recall_at_10, int8 ? fmt::format(", int8 symmetric {:.4f}", int8->recall_at_10) : "",
          Verdict(u8->recall_at_10 >= 0.97));
    }
    if (u8r || i8r) {
      const double best = std::max(u8r ? u8r->recall_at_10 : 0, i8r ? i8r->recall_at_10 : 0);
      out += fmt::format(
          "- Flat recall@10 with rescoring (oversampling {}): uint8 {}, int8 {} (target ≥ 0.999: "
          "{})\n",
          u8r ? u8r->params.substr(u8r->params.rfind(' ') + 1) : "-",
          u8r ? fmt::format("{:.4f}", u8r->recall_at_10) : "-",
          i8r ? fmt::format("{:.4f}", i8r->recall_at_10) : "-", Verdict(best >= 0.999));
    }
    out += "\n";
  }
  return out;
}

std::string JsonReport(const RunInfo& info, const std::vector<Row>& rows) {
  std::string out = "{\n";
  out += fmt::format(
      "  \"meta\": {{\"mode\": {}, \"started\": {}, \"machine\": {}, \"command\": {}, "
      "\"load_average\": {}, \"threads\": {}, \"machine_limits\": {{\"read_gbs_one_thread\": {}, "
      "\"read_gbs_all_threads\": {}, \"limit_threads\": {}, \"kernel_peak_gbs\": {}, "
      "\"kernel_simd\": {}}}}},\n",
      JsonString(info.mode), JsonString(info.started), JsonString(info.machine),
      JsonString(info.command), JsonNumber(info.load_average), info.threads,
      JsonNumber(info.limits.read_gbs_one), JsonNumber(info.limits.read_gbs_all),
      info.limits.threads, JsonNumber(info.limits.kernel_peak_gbs), JsonString(info.limits.simd));
  out += "  \"datasets\": [\n";
  for (size_t i = 0; i < info.datasets.size(); ++i) {
    const DatasetSummary& d = info.datasets[i];
    out += fmt::format(
        "    {{\"name\": {}, \"description\": {}, \"metric\": {}, \"n\": {}, \"queries\": {}, "
        "\"dim\": {}}}{}\n",
        JsonString(d.name), JsonString(d.description), JsonString(d.metric), d.n, d.nq, d.dim,
        i + 1 < info.datasets.size() ? "," : "");
  }
  out += "  ],\n  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out += fmt::format(
        "    {{\"dataset\": {}, \"family\": {}, \"method\": {}, \"params\": {}, \"threads\": {}, "
        "\"recall_at_1\": {}, \"recall_at_10\": {}, \"recall_at_100\": {}, \"qps\": {}, "
        "\"qps_batch\": {}, \"p50_us\": {}, \"p95_us\": {}, \"p99_us\": {}, \"build_s\": {}, "
        "\"memory_bytes\": {}, \"qps_vs_faiss_flat\": {}, \"qps_batch_vs_faiss_flat\": {}, "
        "\"note\": {}}}{}\n",
        JsonString(r.dataset), JsonString(r.family), JsonString(r.method), JsonString(r.params),
        r.threads, JsonNumber(r.recall_at_1), JsonNumber(r.recall_at_10),
        JsonNumber(r.recall_at_100), JsonNumber(r.qps), JsonNumber(r.qps_batch),
        JsonNumber(r.p50_us), JsonNumber(r.p95_us), JsonNumber(r.p99_us), JsonNumber(r.build_s),
        r.memory_bytes, JsonNumber(r.qps_vs_faiss_flat), JsonNumber(r.qps_batch_vs_faiss_flat),
        JsonString(r.note), i + 1 < rows.size() ? "," : "");
  }
  out += "  ]\n}\n";
  return out;
}

std::vector<std::string> PlotRecallQps(const RunInfo& info, const std::vector<Row>& rows,
                                       const std::string& prefix) {
  std::vector<std::string> written;
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    Progress::Get().Break();
    std::fprintf(stderr, "qvec-bench: gnuplot not found (apt-get install gnuplot-nox); no plot\n");
    return written;
  }
  // gnuplot-nox may lack cairo; fall back to the libgd png terminal.
  const bool cairo = std::system("gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo") == 0;
  for (const DatasetSummary& d : info.datasets) {
    // One series per method (sweep points sorted by recall), as ann-benchmarks.
    std::map<std::string, std::vector<const Row*>> by_method;
    std::vector<std::string> order;
    for (const Row& r : rows) {
      if (r.dataset != d.name) continue;
      if (!by_method.count(r.method)) order.push_back(r.method);
      by_method[r.method].push_back(&r);
    }
    if (order.empty()) continue;
    const std::string png = fmt::format("{}-{}.png", prefix, d.name);
    const std::string script_path = png + ".gp";
    std::string script;
    script += cairo ? "set terminal pngcairo noenhanced size 1500,640 font 'DejaVu Sans,10'\n"
                    : "set terminal png noenhanced size 1500,640\n";
    script += fmt::format("set output '{}'\n", png);
    double min_recall = 1;
    for (const Row& r : rows) {
      if (r.dataset == d.name && std::isfinite(r.recall_at_10)) {
        min_recall = std::min(min_recall, r.recall_at_10);
      }
    }
    for (size_t s = 0; s < order.size(); ++s) {
      for (size_t panel = 0; panel < 2; ++panel) {
        script += fmt::format("$d{}_{} << EOD\n", s, panel);
        std::vector<const Row*> pts;
        const size_t threads = panel == 0 ? 1 : info.threads;
        for (const Row* r : by_method[order[s]]) {
          if (r->threads == threads) pts.push_back(r);
        }
        std::sort(pts.begin(), pts.end(),
                  [](const Row* a, const Row* b) { return a->recall_at_10 < b->recall_at_10; });
        for (const Row* r : pts) {
          script += fmt::format("{} {}\n", r->recall_at_10, panel == 0 ? r->qps : r->qps_batch);
        }
        if (pts.empty()) script += "NaN NaN\n";
        script += "EOD\n";
      }
    }
    script +=
        fmt::format("set multiplot layout 1,2 title '{} ({} x {}, {} queries, {}), k=10 — {}'\n",
                    d.name, d.n, d.dim, d.nq, d.metric, info.machine);
    script +=
        "set logscale y\nset grid\nset key bottom left font ',9' opaque box\n"
        "set xlabel 'recall@10'\n";
    script += fmt::format("set xrange [{:.3f}:1.002]\n", std::max(0.0, min_recall - 0.02));
    for (size_t panel = 0; panel < 2; ++panel) {
      script += panel == 0 ? "set ylabel 'queries per second (one query per call, 1 thread)'\n"
                           : fmt::format("set ylabel 'queries per second (batch, {} threads)'\n",
                                         info.threads);
      script += "plot ";
      for (size_t s = 0; s < order.size(); ++s) {
        script +=
            fmt::format("$d{}_{} using 1:2 with linespoints lw 2 pt {} lc rgb '{}' title '{}'{}", s,
                        panel, 5 + static_cast<int>(s), ColorOf(order[s]), order[s],
                        s + 1 < order.size() ? ", \\\n     " : "\n");
      }
    }
    script += "unset multiplot\n";
    std::ofstream(script_path) << script;
    const std::string command = fmt::format("gnuplot '{}' 2>&1", script_path);
    if (std::system(command.c_str()) == 0) {
      written.push_back(png);
    } else {
      Progress::Get().Break();
      std::fprintf(stderr, "qvec-bench: gnuplot failed on %s\n", script_path.c_str());
    }
  }
  return written;
}

}  // namespace qvec::bench
