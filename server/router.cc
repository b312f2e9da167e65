#include "server/router.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "engine/json_writer.h"
#include "server/dashboard_assets.h"
#include "server/json_request.h"
#include "server/metrics.h"
#include "server/request_fields.h"
#include "server/snapshot_files.h"
#include "server/status_http.h"

namespace qvec::server {
namespace {

using engine::JsonWriter;
using simdjson::dom::element;
using Clock = std::chrono::steady_clock;

// The Qdrant REST API version whose shapes qvec follows.
constexpr std::string_view kQdrantApiVersion = "1.18.0";

// What a handler sees: the decoded path segments and the request.
struct Call {
  const HttpRequest& request;
  std::vector<std::string> segments;
  std::string query;
  Clock::time_point start;

  std::string_view QueryParam(std::string_view name) const {
    size_t pos = 0;
    while (pos < query.size()) {
      size_t amp = query.find('&', pos);
      std::string_view pair = std::string_view(query).substr(
          pos, amp == std::string::npos ? std::string::npos : amp - pos);
      size_t eq = pair.find('=');
      if (pair.substr(0, eq) == name) {
        return eq == std::string_view::npos ? std::string_view("") : pair.substr(eq + 1);
      }
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
    return {};
  }
};

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

HttpResponse ErrorResponse(unsigned status, std::string_view message, double seconds) {
  JsonWriter w;
  w.BeginObject();
  w.Key("status").BeginObject().Key("error").String(message).EndObject();
  w.Key("time").Double(seconds);
  w.EndObject();
  HttpResponse r;
  r.status = status;
  r.body = w.Take();
  return r;
}

HttpResponse StatusResponse(const Status& s, double seconds) {
  return ErrorResponse(HttpStatusFor(s.code()), s.message(), seconds);
}

// {"result": <result>, "status": "ok", "time": t}, built in place in the
// result's own buffer (answers can be tens of MiB; a copy would double them).
HttpResponse OkResponse(std::string&& result_json, double seconds) {
  constexpr std::string_view kHead = "{\"result\":";
  result_json.insert(0, kHead);
  result_json += ",\"status\":\"ok\",\"time\":";
  JsonWriter t;
  t.Double(seconds);
  result_json += t.str();
  result_json += '}';
  HttpResponse r;
  r.body = std::move(result_json);
  return r;
}

HttpResponse OkResponse(const char* result_json, double seconds) {
  return OkResponse(std::string(result_json), seconds);
}

void WriteId(JsonWriter& w, const PointId& id) {
  if (id.is_uuid()) {
    w.String(id.ToString());
  } else {
    w.Uint(id.num());
  }
}

void WriteVector(JsonWriter& w, const std::vector<float>& v) {
  w.BeginArray();
  for (float x : v) w.Float(x);
  w.EndArray();
}

void WriteSparseVector(JsonWriter& w, const SparseVector& v) {
  w.BeginObject();
  w.Key("indices").BeginArray();
  for (uint32_t i : v.indices) w.Uint(i);
  w.EndArray();
  w.Key("values").BeginArray();
  for (float x : v.values) w.Float(x);
  w.EndArray();
  w.EndObject();
}

// Whether a collection's points write "vector" as a bare array: one unnamed
// field and no sparse ones.
bool ArrayVectors(const CollectionConfig& c) {
  return c.single_vector() && c.sparse_vectors.empty();
}

// A point's "vector": the unnamed field's array (or null) when the
// collection has only that field (ArrayVectors); otherwise an object of the
// fields asked for ("" for the unnamed one; sparse ones as {indices,
// values}), or null when none was asked for.
void WriteVectors(JsonWriter& w, bool single_vector, bool asked,
                  const std::optional<std::vector<float>>& unnamed,
                  const std::map<std::string, std::vector<float>>& named,
                  const std::map<std::string, SparseVector>& sparse) {
  w.Key("vector");
  if (single_vector) {
    if (unnamed) {
      WriteVector(w, *unnamed);
    } else {
      w.Null();
    }
    return;
  }
  if (!asked) {
    w.Null();
    return;
  }
  w.BeginObject();
  if (unnamed) {
    w.Key("");
    WriteVector(w, *unnamed);
  }
  for (const auto& [name, v] : named) {
    w.Key(name);
    WriteVector(w, v);
  }
  for (const auto& [name, v] : sparse) {
    w.Key(name);
    WriteSparseVector(w, v);
  }
  w.EndObject();
}

// How records and hits are written: the payload selector, and whether the
// collection has one unnamed vector and vectors were asked for.
struct OutputShape {
  const PayloadSelector& payload;
  bool single_vector = true;
  bool vectors_asked = false;
};

// Qdrant's OrderValue, when set: an integer when it is one.
void WriteOrderValue(JsonWriter& w, const std::optional<double>& value) {
  if (!value) return;
  const double v = *value;
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    w.Key("order_value").Int(static_cast<int64_t>(v));
  } else {
    w.Key("order_value").Double(v);
  }
}

void WriteRecord(JsonWriter& w, const Record& r, const OutputShape& shape) {
  w.BeginObject();
  w.Key("id");
  WriteId(w, r.id);
  w.Key("payload");
  if (r.payload) {
    w.Raw(shape.payload.Apply(*r.payload));
  } else {
    w.Null();
  }
  WriteVectors(w, shape.single_vector, shape.vectors_asked, r.vector, r.vectors, r.sparse_vectors);
  WriteOrderValue(w, r.order_value);
  w.EndObject();
}

void WriteScoredPoints(JsonWriter& w, const std::vector<ScoredPoint>& points,
                       const OutputShape& shape) {
  w.BeginArray();
  for (const auto& p : points) {
    w.BeginObject();
    w.Key("id");
    WriteId(w, p.id);
    w.Key("version").Uint(0);
    w.Key("score").Float(p.score);
    w.Key("payload");
    if (p.payload) {
      w.Raw(shape.payload.Apply(*p.payload));
    } else {
      w.Null();
    }
    WriteVectors(w, shape.single_vector, shape.vectors_asked, p.vector, p.vectors,
                 p.sparse_vectors);
    WriteOrderValue(w, p.order_value);
    w.EndObject();
  }
  w.EndArray();
}

std::string UpdateResult() { return R"({"operation_id":0,"status":"completed"})"; }

// Percent-decodes one path segment; InvalidArgument for bad escapes.
StatusOr<std::string> DecodeSegment(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= s.size()) return InvalidArgumentError("malformed percent-escape in path");
    int hi = hex(s[i + 1]);
    int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("malformed percent-escape in path");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// True unless the request carries a body with a Content-Type other than JSON
// ("application/json" or "application/*+json", any parameters). A missing
// Content-Type is accepted.
bool JsonContentType(const HttpRequest& req) {
  if (req.body.empty()) return true;
  std::string_view type = req.Header("content-type");
  if (type.empty()) return true;
  type = type.substr(0, type.find(';'));
  std::string t;
  for (char c : type) {
    if (c != ' ' && c != '\t') t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (t == "application/json") return true;
  return t.rfind("application/", 0) == 0 && t.size() > 5 &&
         t.compare(t.size() - 5, 5, "+json") == 0;
}

// The methods /metrics counts by name; any other is counted as "other", so
// that made-up methods cannot grow the metrics without bound.
std::string_view MetricMethod(std::string_view m) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (m == known) return known;
  }
  return "other";
}

// Qdrant's query parameters: wait and ordering (checked by Dispatch), the
// operation timeout in seconds (qvec applies writes before answering and has
// no request deadline, so it has no effect) and read consistency (one replica
// answers every read consistently). Any other parameter is refused, naming it.
// `snapshot_upload`: the request is a snapshot upload, which also takes
// `priority` and `checksum`.
Status CheckQueryParams(std::string_view query, bool snapshot_upload) {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string_view pair =
        query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    pos = amp == std::string_view::npos ? query.size() : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    auto is_uint = [](std::string_view v) {
      return !v.empty() && v.size() <= 19 && v.find_first_not_of("0123456789") == v.npos;
    };
    if (key == "wait" || key == "ordering") continue;
    if (snapshot_upload && key == "priority") {
      QVEC_RETURN_IF_ERROR(CheckSnapshotPriority(value, "query parameter priority"));
      continue;
    }
    if (snapshot_upload && key == "checksum") {
      if (value.size() != 64 ||
          value.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
        return InvalidArgumentError(
            "query parameter checksum: expected a SHA-256 in hex (64 digits)");
      }
      continue;
    }
    // GET /telemetry's: how much to report, and whether to hash names.
    if (key == "details_level") {
      if (!is_uint(value)) {
        return InvalidArgumentError("query parameter details_level: expected a number, got '" +
                                    std::string(value) + "'");
      }
      continue;
    }
    if (key == "anonymize") {
      if (value != "true" && value != "false") {
        return InvalidArgumentError("query parameter anonymize: expected true or false, got '" +
                                    std::string(value) + "'");
      }
      continue;
    }
    if (key == "timeout") {
      if (!is_uint(value)) {
        return InvalidArgumentError("query parameter timeout: expected whole seconds, got '" +
                                    std::string(value) + "'");
      }
      continue;
    }
    if (key == "consistency") {
      if (!is_uint(value) && value != "majority" && value != "quorum" && value != "all") {
        return InvalidArgumentError(
            "query parameter consistency: expected a number, majority, quorum or all, got '" +
            std::string(value) + "'");
      }
      continue;
    }
    return InvalidArgumentError("query parameter " + std::string(key) +
                                ": not supported by qvec");
  }
  return Status::Ok();
}

std::string RandomUuid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  const uint64_t hi = rng(), lo = rng();
  std::string hex = fmt::format("{:016x}{:016x}", hi, lo);
  hex[12] = '4';  // version 4
  hex[16] = "89ab"[lo >> 62];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string NowRfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Bound on a snapshot a recovery fetches from a URL.
constexpr uint64_t kMaxSnapshotDownloadBytes = uint64_t{64} << 30;

class Router final : public RequestHandler {
 public:
  Router(std::shared_ptr<Database> db, std::string snapshots_dir, size_t max_response_bytes)
      : db_(std::move(db)),
        snapshots_(db_, std::move(snapshots_dir), kMaxSnapshotDownloadBytes),
        max_response_bytes_(max_response_bytes) {}

  HandlerPool PoolFor(std::string_view method, std::string_view target) const override {
    std::string_view path = target.substr(0, target.find('?'));
    if ((method == "GET" || method == "HEAD") &&
        (path == "/healthz" || path == "/livez" || path == "/readyz" || path == "/metrics" ||
         path == "/")) {
      return HandlerPool::kInline;
    }
    auto ends_with = [&](std::string_view suffix) {
      return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
    };
    if ((method == "POST" && (ends_with("/snapshots") || ends_with("/snapshots/upload"))) ||
        (method == "PUT" && ends_with("/snapshots/recover"))) {
      return HandlerPool::kSlow;
    }
    return HandlerPool::kWorkers;
  }

  Access RequiredAccess(std::string_view method, std::string_view target) const override {
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/healthz" || path == "/livez" || path == "/readyz") return Access::kNone;
    // The dashboard's files are public; the page asks for the API key and
    // sends it with every API call it makes.
    if (path == "/dashboard" || path.rfind("/dashboard/", 0) == 0) return Access::kNone;
    if (method == "GET" || method == "HEAD") return Access::kRead;
    if (method == "POST") {
      // Reads that Qdrant sends as POST.
      for (std::string_view suffix :
           {"/points", "/points/search", "/points/search/batch", "/points/query",
            "/points/query/batch", "/points/count", "/points/scroll", "/points/recommend",
            "/points/recommend/batch", "/points/discover", "/points/discover/batch",
            "/points/query/groups", "/points/search/groups", "/points/recommend/groups",
            "/facet", "/points/search/matrix/pairs", "/points/search/matrix/offsets",
            "/qvec/lists"}) {
        if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
          return Access::kRead;
        }
      }
    }
    return Access::kWrite;
  }

  HttpResponse Handle(const HttpRequest& request) override {
    const auto start = Clock::now();
    std::string route = "other";
    HttpResponse response;
    try {
      response = Dispatch(request, start, &route);
    } catch (const std::exception& e) {
      response = ErrorResponse(500, std::string("internal error: ") + e.what(), Seconds(start));
    }
    metrics_.Record(std::string(MetricMethod(request.method)), route, response.status,
                    Seconds(start));
    return response;
  }

 private:
  using Method = std::string_view;

  HttpResponse Dispatch(const HttpRequest& req, Clock::time_point start, std::string* route) {
    std::string_view target = req.target;
    size_t q = target.find('?');
    Call call{req, {}, q == std::string_view::npos ? "" : std::string(target.substr(q + 1)), start};
    std::string_view path = target.substr(0, q);
    if (path.empty() || path[0] != '/') {
      return ErrorResponse(400, "request target must be an absolute path", Seconds(start));
    }
    const bool upload = path.size() >= 17 && path.substr(path.size() - 17) == "/snapshots/upload";
    if (!upload && !JsonContentType(req)) {
      return ErrorResponse(
          415,
          "Content-Type must be application/json, got " + std::string(req.Header("content-type")),
          Seconds(start));
    }
    size_t pos = 1;
    while (pos <= path.size()) {
      size_t slash = path.find('/', pos);
      std::string_view seg =
          path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
      if (!(seg.empty() && slash == std::string_view::npos)) {
        auto decoded = DecodeSegment(seg);
        if (!decoded.ok()) return StatusResponse(decoded.status(), Seconds(start));
        call.segments.push_back(std::move(*decoded));
      }
      if (slash == std::string_view::npos) break;
      pos = slash + 1;
    }
    // Query parameters of Qdrant's write endpoints. Writes are always
    // applied (and durable) before qvec answers, so `wait=false` gets the
    // answer `wait=true` gets ("completed"); a single node has one ordering.
    // Values outside the documented ones are refused, naming the parameter.
    if (std::string_view wait = call.QueryParam("wait");
        !wait.empty() && wait != "true" && wait != "false") {
      return ErrorResponse(
          400, "query parameter wait: expected true or false, got '" + std::string(wait) + "'",
          Seconds(start));
    }
    if (std::string_view ordering = call.QueryParam("ordering");
        !ordering.empty() && ordering != "weak" && ordering != "medium" && ordering != "strong") {
      return ErrorResponse(400,
                           "query parameter ordering: expected weak, medium or strong, got '" +
                               std::string(ordering) + "'",
                           Seconds(start));
    }
    if (Status q = CheckQueryParams(call.query, upload); !q.ok()) {
      return StatusResponse(q, Seconds(start));
    }
    const auto& s = call.segments;
    const std::string& m = req.method;
    auto route_is =
        [&](std::string_view name,
            std::initializer_list<std::string_view> methods) -> std::optional<HttpResponse> {
      *route = std::string(name);
      for (auto allowed : methods) {
        if (m == allowed) return std::nullopt;
      }
      return ErrorResponse(405, "method " + m + " is not allowed on " + std::string(name),
                           Seconds(start));
    };
#define QVEC_ROUTE(name, ...) \
  if (auto not_allowed = route_is(name, {__VA_ARGS__})) return *not_allowed

    if (s.empty()) {
      QVEC_ROUTE("/", "GET", "HEAD");
      return Root(call);
    }
    if (s[0] == "dashboard") {
      QVEC_ROUTE("/dashboard", "GET", "HEAD");
      return DashboardRoute(call);
    }
    if (s.size() == 1 && (s[0] == "healthz" || s[0] == "livez" || s[0] == "readyz")) {
      QVEC_ROUTE("/" + s[0], "GET", "HEAD");
      HttpResponse r;
      r.content_type = "text/plain";
      r.body = "healthz check passed";
      return r;
    }
    if (s.size() == 1 && s[0] == "aliases") {
      QVEC_ROUTE("/aliases", "GET");
      return AliasesRoute(call, nullptr);
    }
    if (s.size() == 1 && s[0] == "telemetry") {
      QVEC_ROUTE("/telemetry", "GET");
      return Telemetry(call);
    }
    if (s.size() == 1 && s[0] == "metrics") {
      QVEC_ROUTE("/metrics", "GET");
      return MetricsPage();
    }
    if (s[0] == "snapshots" && s.size() == 1) {
      QVEC_ROUTE("/snapshots", "GET", "POST");
      if (m == "POST") return CreateSnapshot(call, "");
      return ListSnapshots(call, "");
    }
    if (s[0] == "snapshots" && s.size() == 2) {
      QVEC_ROUTE("/snapshots/{snapshot_name}", "GET", "HEAD", "DELETE");
      if (m == "DELETE") return DeleteSnapshot(call, "", s[1]);
      return DownloadSnapshot(call, "", s[1]);
    }
    if (s[0] != "collections") {
      return ErrorResponse(404, "no route for " + std::string(path), Seconds(start));
    }
    if (s.size() == 1) {
      QVEC_ROUTE("/collections", "GET");
      return ListCollections(call);
    }
    const std::string& name = s[1];
    if (s.size() == 2 && name == "aliases" && m == "POST") {
      *route = "/collections/aliases";
      return UpdateAliasesRoute(call);
    }
    if (s.size() == 3 && s[2] == "aliases") {
      QVEC_ROUTE("/collections/{name}/aliases", "GET");
      return WithCollection(call, name, [&](Collection& c) { return AliasesRoute(call, &c); });
    }
    if (s.size() == 2) {
      QVEC_ROUTE("/collections/{name}", "GET", "PUT", "DELETE", "PATCH");
      if (m == "GET") return CollectionInfoRoute(call, name);
      if (m == "PUT") return CreateCollection(call, name);
      if (m == "PATCH") return UpdateCollection(call, name);
      return DropCollection(call, name);
    }
    if (s.size() == 3 && s[2] == "exists") {
      QVEC_ROUTE("/collections/{name}/exists", "GET");
      return CollectionExists(call, name);
    }
    if (s.size() == 3 && s[2] == "snapshots") {
      QVEC_ROUTE("/collections/{name}/snapshots", "GET", "POST");
      return WithCollection(call, name, [&](Collection& c) {
        if (m == "POST") return CreateSnapshot(call, c.name());
        return ListSnapshots(call, c.name());
      });
    }
    if (s.size() == 4 && s[2] == "snapshots" && s[3] == "upload") {
      QVEC_ROUTE("/collections/{name}/snapshots/upload", "POST");
      return UploadSnapshot(call, name);
    }
    if (s.size() == 4 && s[2] == "snapshots" && s[3] == "recover") {
      QVEC_ROUTE("/collections/{name}/snapshots/recover", "PUT");
      return RecoverSnapshot(call, name);
    }
    if (s.size() == 4 && s[2] == "snapshots") {
      QVEC_ROUTE("/collections/{name}/snapshots/{snapshot_name}", "GET", "HEAD", "DELETE");
      return WithCollection(call, name, [&](Collection& c) {
        if (m == "DELETE") return DeleteSnapshot(call, c.name(), s[3]);
        return DownloadSnapshot(call, c.name(), s[3]);
      });
    }
    if (s.size() == 3 && s[2] == "facet") {
      QVEC_ROUTE("/collections/{name}/facet", "POST");
      return FacetRoute(call, name);
    }
    if (s.size() == 4 && s[2] == "qvec" && s[3] == "lists") {
      QVEC_ROUTE("/collections/{name}/qvec/lists", "POST");
      return ListsRoute(call, name);
    }
    if (s.size() == 3 && s[2] == "index") {
      QVEC_ROUTE("/collections/{name}/index", "PUT");
      return WithBody(call, name, [&](Collection& c, element body) {
        auto req = ParseCreateFieldIndex(body);
        if (!req.ok()) return StatusResponse(req.status(), Seconds(start));
        Status st = c.CreatePayloadIndex(req->key, req->type);
        if (!st.ok()) return StatusResponse(st, Seconds(start));
        return OkResponse(UpdateResult(), Seconds(start));
      });
    }
    if (s.size() == 4 && s[2] == "index") {
      QVEC_ROUTE("/collections/{name}/index/{field_name}", "DELETE");
      return WithCollection(call, name, [&](Collection& c) {
        Status st = c.DropPayloadIndex(s[3]);
        if (!st.ok()) return StatusResponse(st, Seconds(start));
        return OkResponse(UpdateResult(), Seconds(start));
      });
    }
    if (s.size() >= 3 && s[2] == "points") {
      if (s.size() == 3) {
        QVEC_ROUTE("/collections/{name}/points", "PUT", "POST");
        if (m == "PUT") return Upsert(call, name);
        return Retrieve(call, name);
      }
      const std::string& op = s[3];
      if (s.size() == 4) {
        if (op == "delete") {
          QVEC_ROUTE("/collections/{name}/points/delete", "POST");
          return DeletePoints(call, name);
        }
        if (op == "count") {
          QVEC_ROUTE("/collections/{name}/points/count", "POST");
          return CountPoints(call, name);
        }
        if (op == "scroll") {
          QVEC_ROUTE("/collections/{name}/points/scroll", "POST");
          return ScrollPoints(call, name);
        }
        if (op == "search") {
          QVEC_ROUTE("/collections/{name}/points/search", "POST");
          return SearchRoute(call, name);
        }
        if (op == "query") {
          QVEC_ROUTE("/collections/{name}/points/query", "POST");
          return QueryRoute(call, name);
        }
        if (op == "recommend" || op == "discover") {
          QVEC_ROUTE("/collections/{name}/points/" + op, "POST");
          return LegacyQueryRoute(call, name, op == "discover");
        }
        if (op == "payload") {
          QVEC_ROUTE("/collections/{name}/points/payload", "POST", "PUT");
          const bool overwrite = m == "PUT";
          return PayloadRoute(call, name,
                              [overwrite](element b) { return ParseSetPayload(b, overwrite); });
        }
        if (op == "vectors") {
          QVEC_ROUTE("/collections/{name}/points/vectors", "PUT");
          return UpdateVectorsRoute(call, name);
        }
        if (op == "batch") {
          QVEC_ROUTE("/collections/{name}/points/batch", "POST");
          return UpdateBatchRoute(call, name);
        }
        QVEC_ROUTE("/collections/{name}/points/{id}", "GET");
        return GetPoint(call, name, op);
      }
      if (s.size() == 5 && op == "payload" && (s[4] == "delete" || s[4] == "clear")) {
        QVEC_ROUTE("/collections/{name}/points/payload/" + s[4], "POST");
        if (s[4] == "delete") return PayloadRoute(call, name, ParseDeletePayload);
        return PayloadRoute(call, name, ParseClearPayload);
      }
      if (s.size() == 5 && op == "vectors" && s[4] == "delete") {
        QVEC_ROUTE("/collections/{name}/points/vectors/delete", "POST");
        return DeleteVectorsRoute(call, name);
      }
      if (s.size() == 5 && s[4] == "batch" && op == "search") {
        QVEC_ROUTE("/collections/{name}/points/search/batch", "POST");
        return SearchBatchRoute(call, name);
      }
      if (s.size() == 5 && s[4] == "batch" && op == "query") {
        QVEC_ROUTE("/collections/{name}/points/query/batch", "POST");
        return QueryBatchRoute(call, name);
      }
      if (s.size() == 6 && op == "search" && s[4] == "matrix" &&
          (s[5] == "pairs" || s[5] == "offsets")) {
        QVEC_ROUTE("/collections/{name}/points/search/matrix/" + s[5], "POST");
        return SearchMatrixRoute(call, name, s[5] == "offsets");
      }
      if (s.size() == 5 && s[4] == "batch" && (op == "recommend" || op == "discover")) {
        QVEC_ROUTE("/collections/{name}/points/" + op + "/batch", "POST");
        return LegacyBatchRoute(call, name, op == "discover");
      }
      if (s.size() == 5 && s[4] == "groups" &&
          (op == "query" || op == "search" || op == "recommend")) {
        QVEC_ROUTE("/collections/{name}/points/" + op + "/groups", "POST");
        return GroupsRoute(call, name, op);
      }
    }
#undef QVEC_ROUTE
    return ErrorResponse(404, "no route for " + std::string(path), Seconds(start));
  }

  // ---- handlers ----

  HttpResponse Root(const Call& call) {
    JsonWriter w;
    w.BeginObject();
    w.Key("title").String("qvec - vector search engine");
    // Qdrant clients compare `version` with their own and warn beyond one
    // minor version apart, so it carries the Qdrant API version qvec speaks;
    // qvec's own version is `qvec_version`.
    w.Key("version").String(kQdrantApiVersion);
    w.Key("qvec_version").String(Version());
    w.EndObject();
    HttpResponse r;
    r.body = w.Take();
    return r;
  }

  // Qdrant's telemetry basics: this instance, its collections and the
  // requests it answered. details_level >= 1 lists the collections;
  // anonymize=true replaces their names by hashes.
  HttpResponse Telemetry(const Call& call) {
    const std::string_view level_text = call.QueryParam("details_level");
    const uint64_t level = level_text.empty() ? 0 : std::stoull(std::string(level_text));
    const bool anonymize = call.QueryParam("anonymize") == "true";
    auto shown = [&](const std::string& name) {
      return anonymize ? fmt::format("{:016x}", std::hash<std::string>{}(name)) : name;
    };
    JsonWriter w;
    w.BeginObject();
    w.Key("id").String(instance_id_);
    w.Key("app").BeginObject();
    w.Key("name").String("qvec");
    w.Key("version").String(Version());
    w.Key("qdrant_api_version").String(kQdrantApiVersion);
    w.Key("startup").String(startup_time_);
    w.Key("system").BeginObject();
    w.Key("cores").Uint(std::thread::hardware_concurrency());
    w.EndObject();
    w.EndObject();
    const auto names = db_->ListCollections();
    w.Key("collections").BeginObject();
    w.Key("number_of_collections").Uint(names.size());
    if (level >= 1) {
      w.Key("collections").BeginArray();
      for (const std::string& name : names) {
        auto c = db_->GetCollection(name);
        if (!c.ok()) continue;
        auto n = (*c)->Count(nullptr);
        w.BeginObject().Key("id").String(shown(name));
        w.Key("points_count").Uint(n.ok() ? *n : 0);
        w.Key("vector_fields").Uint((*c)->config().Fields().size());
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
    w.Key("requests").BeginObject().Key("rest").BeginObject().Key("responses").BeginObject();
    for (const auto& [route, st] : metrics_.Stats()) {
      w.Key(route).BeginObject();
      for (const auto& [status, count] : st.by_status) {
        w.Key(std::to_string(status)).BeginObject().Key("count").Uint(count).EndObject();
      }
      w.Key("avg_duration_micros").Double(st.avg_micros);
      w.EndObject();
    }
    w.EndObject().EndObject().EndObject();
    w.EndObject();
    return OkResponse(w.Take(), Seconds(call.start));
  }

  HttpResponse MetricsPage() {
    // Never reads from disk: counts and states come from memory.
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    metrics_.Render(&r.body);
    r.body += "# HELP qvec_collection_points Points per collection.\n";
    r.body += "# TYPE qvec_collection_points gauge\n";
    std::string states;
    for (const auto& name : db_->ListCollections()) {
      auto c = db_->GetCollection(name);
      if (!c.ok()) continue;
      auto n = (*c)->Count(nullptr);
      if (!n.ok()) continue;
      std::string escaped;
      JsonWriter::AppendQuoted(escaped, name);
      r.body += "qvec_collection_points{collection=" + escaped + "} " + std::to_string(*n) + "\n";
      states += "qvec_collection_index_state{collection=" + escaped + "} " +
                std::to_string(static_cast<int>((*c)->index_state())) + "\n";
    }
    r.body += "# HELP qvec_collection_index_state 0 = flat, 1 = training, 2 = IVF.\n";
    r.body += "# TYPE qvec_collection_index_state gauge\n";
    r.body += states;
    if (auto h = db_->Health(); h.ok()) {
      r.body += "# HELP qvec_storage_free_bytes Free space on the disk holding the database.\n";
      r.body += "# TYPE qvec_storage_free_bytes gauge\n";
      r.body += "qvec_storage_free_bytes " + std::to_string(h->free_disk_bytes) + "\n";
      r.body += "# HELP qvec_storage_writes_stopped 1 while writes are refused (disk full).\n";
      r.body += "# TYPE qvec_storage_writes_stopped gauge\n";
      r.body +=
          std::string("qvec_storage_writes_stopped ") + (h->writes_stopped ? "1" : "0") + "\n";
    }
    return r;
  }

  HttpResponse ListCollections(const Call& call) {
    JsonWriter w;
    w.BeginObject().Key("collections").BeginArray();
    for (const auto& name : db_->ListCollections()) {
      w.BeginObject().Key("name").String(name).EndObject();
    }
    w.EndArray().EndObject();
    return OkResponse(w.Take(), Seconds(call.start));
  }

  HttpResponse CreateCollection(const Call& call, const std::string& name) {
    Status valid = ValidateCollectionName(name);
    if (!valid.ok()) return ErrorResponse(422, valid.message(), Seconds(call.start));
    simdjson::dom::parser& parser = Parser();
    auto body = ParseBody(parser, call.request.body);
    if (!body.ok()) return StatusResponse(body.status(), Seconds(call.start));
    auto config = ParseCollectionConfig(*body);
    if (!config.ok()) return StatusResponse(config.status(), Seconds(call.start));
    Status s = db_->CreateCollection(name, *config);
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  HttpResponse UpdateCollection(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto next = ParseCollectionUpdate(body, c.config());
      if (!next.ok()) return StatusResponse(next.status(), Seconds(call.start));
      Status s = db_->UpdateCollection(c.name(), *next);
      if (!s.ok()) return StatusResponse(s, Seconds(call.start));
      return OkResponse("true", Seconds(call.start));
    });
  }

  // GET /dashboard (the page) and /dashboard/<file> (its bundle).
  static HttpResponse DashboardRoute(const Call& call) {
    const auto& s = call.segments;
    const std::string file = s.size() == 1 ? "index.html" : s.size() == 2 ? s[1] : "";
    const DashboardAsset* asset = FindDashboardAsset(file);
    if (asset == nullptr) {
      return ErrorResponse(404, "no dashboard file " + file, Seconds(call.start));
    }
    HttpResponse r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->data);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }

  HttpResponse UpdateAliasesRoute(const Call& call) {
    auto body = ParseBody(Parser(), call.request.body);
    if (!body.ok()) return StatusResponse(body.status(), Seconds(call.start));
    auto ops = ParseAliasActions(*body);
    if (!ops.ok()) return StatusResponse(ops.status(), Seconds(call.start));
    Status s = db_->UpdateAliases(*ops);
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  // GET /aliases (collection == nullptr) or /collections/{name}/aliases.
  HttpResponse AliasesRoute(const Call& call, const Collection* collection) {
    JsonWriter w;
    w.BeginObject().Key("aliases").BeginArray();
    for (const auto& [alias, target] : db_->ListAliases()) {
      if (collection != nullptr && target != collection->name()) continue;
      w.BeginObject().Key("alias_name").String(alias).Key("collection_name").String(target);
      w.EndObject();
    }
    w.EndArray().EndObject();
    return OkResponse(w.Take(), Seconds(call.start));
  }

  HttpResponse DropCollection(const Call& call, const std::string& name) {
    Status s = db_->DropCollection(name);
    if (s.code() == StatusCode::kNotFound) return OkResponse("false", Seconds(call.start));
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  HttpResponse CollectionExists(const Call& call, const std::string& name) {
    bool exists = db_->GetCollection(name).ok();
    return OkResponse(exists ? R"({"exists":true})" : R"({"exists":false})", Seconds(call.start));
  }

  static void WriteQvecQuantization(JsonWriter& w, const QuantizationOptions& q) {
    w.BeginObject();
    w.Key("type").String(q.type == QuantizationOptions::Type::kUint8 ? "uint8" : "int8");
    w.Key("granularity")
        .String(q.granularity == QuantizationOptions::Granularity::kPerVector ? "per_vector"
                : q.granularity == QuantizationOptions::Granularity::kPerCollection
                    ? "per_collection"
                    : "per_dimension");
    w.Key("quantile").Double(q.quantile);
    w.Key("recall_tuned").Bool(q.recall_tuned);
    w.EndObject();
  }

  static void WriteQuantizationConfig(JsonWriter& w, const QuantizationOptions& q) {
    w.BeginObject().Key("scalar").BeginObject();
    w.Key("type").String("int8").Key("quantile").Double(q.quantile);
    w.Key("always_ram").Bool(q.always_ram);
    w.EndObject().EndObject();
  }

  // Qdrant's VectorParams of one field (`with_quantization` for named
  // fields, which carry their own quantization_config).
  static void WriteVectorParams(JsonWriter& w, const VectorFieldConfig& f, bool with_quantization) {
    w.BeginObject();
    w.Key("size").Uint(f.dimension);
    w.Key("distance").String(DistanceName(f.distance));
    if (with_quantization) {
      w.Key("quantization_config");
      WriteQuantizationConfig(w, f.quantization);
    }
    w.EndObject();
  }

  // qvec's figures of one field: index, quantization, quality.
  static void WriteFieldFigures(JsonWriter& w, const VectorFieldInfo& f) {
    const IndexInfo& index = f.index;
    const char* state = index.state == IndexInfo::State::kFlat       ? "flat"
                        : index.state == IndexInfo::State::kTraining ? "training"
                                                                     : "ivf";
    w.Key("index").BeginObject();
    w.Key("state").String(state);
    w.Key("kind").String(index.kind);
    w.Key("nlist").Uint(index.nlist);
    w.Key("list_min").Uint(index.list_min);
    w.Key("list_median").Uint(index.list_median);
    w.Key("list_max").Uint(index.list_max);
    w.Key("imbalance").Double(index.imbalance);
    w.Key("kmeans_objective").Double(index.kmeans_objective);
    w.Key("training_seconds").Double(index.training_seconds);
    w.Key("trained_on_points").Uint(index.trained_on_points);
    w.Key("recall_curve").BeginArray();
    for (const auto& [nprobe, recall] : index.recall_curve) {
      w.BeginObject().Key("nprobe").Uint(nprobe).Key("recall_at_10").Float(recall).EndObject();
    }
    w.EndArray();
    w.Key("first_pass").String(index.first_pass);
    w.Key("first_pass_curve").BeginArray();
    for (const auto& [oversampling, retention] : index.first_pass_curve) {
      w.BeginObject().Key("oversampling").Float(oversampling).Key("retention").Float(retention);
      w.EndObject();
    }
    w.EndArray();
    w.Key("rescore_curve").BeginArray();
    for (const auto& [oversampling, recall] : index.rescore_curve) {
      w.BeginObject().Key("oversampling").Float(oversampling).Key("recall_at_10").Float(recall);
      w.EndObject();
    }
    w.EndArray();
    w.Key("default_oversampling").Float(index.default_oversampling);
    w.Key("estimated_recall");
    if (index.rescore_curve.empty()) {
      w.Null();
    } else {
      w.Float(index.estimated_recall);
    }
    w.Key("failed_builds").Uint(index.failed_builds);
    w.Key("rebuild_pending").Bool(index.rebuild_pending);
    w.Key("last_error");
    if (index.last_error.empty()) {
      w.Null();
    } else {
      w.String(index.last_error);
    }
    w.Key("codes_quantization");
    WriteQvecQuantization(w, index.codes_quantization);
    w.EndObject();
    w.Key("quantization");
    WriteQvecQuantization(w, f.config.quantization);
    // The options as configured (PATCH "qvec": {"index": {...}} sets them).
    const IndexOptions& o = f.config.index;
    w.Key("index_options").BeginObject();
    w.Key("nlist").Uint(o.nlist);
    w.Key("ivf_threshold").Uint(o.ivf_threshold);
    w.Key("default_nprobe").Uint(o.default_nprobe);
    w.Key("default_target_recall").Float(o.default_target_recall);
    w.Key("first_pass").String(o.first_pass == IndexOptions::FirstPass::kSq4   ? "sq4"
                               : o.first_pass == IndexOptions::FirstPass::kPq4 ? "pq4"
                                                                               : "none");
    w.EndObject();
    w.Key("quality").BeginObject();
    w.Key("sample_size").Uint(f.quality.sample_size);
    w.Key("mse").Double(f.quality.mse);
    w.Key("sqnr_db").Double(f.quality.sqnr_db);
    w.Key("max_abs_error").Double(f.quality.max_abs_error);
    w.Key("score_mean_abs_error").Double(f.quality.score_mean_abs_error);
    w.Key("score_max_abs_error").Double(f.quality.score_max_abs_error);
    w.EndObject();
  }

  HttpResponse CollectionInfoRoute(const Call& call, const std::string& name) {
    return WithCollection(call, name, [&](Collection& c) {
      auto info = c.Info();
      if (!info.ok()) return StatusResponse(info.status(), Seconds(call.start));
      const CollectionConfig& cfg = info->config;
      const bool single = cfg.single_vector();
      bool training = false;
      size_t indexed = 0;
      for (const auto& [fname, f] : info->fields) {
        training = training || f.index.state == IndexInfo::State::kTraining ||
                   (f.index.rebuild_pending && f.vectors_count > 0);
        indexed += f.vectors_count;
      }
      JsonWriter w;
      w.BeginObject();
      w.Key("status").String(training ? "yellow" : "green");
      w.Key("optimizer_status").String("ok");
      w.Key("indexed_vectors_count").Uint(indexed);
      w.Key("points_count").Uint(info->points_count);
      w.Key("segments_count").Uint(1);
      w.Key("config").BeginObject();
      w.Key("params").BeginObject();
      w.Key("vectors");
      if (single) {
        WriteVectorParams(w, cfg.Fields().begin()->second, false);
      } else {
        w.BeginObject();
        for (const auto& [fname, f] : cfg.vectors) {
          w.Key(fname);
          WriteVectorParams(w, f, true);
        }
        w.EndObject();
      }
      if (!cfg.sparse_vectors.empty()) {
        w.Key("sparse_vectors").BeginObject();
        for (const auto& [fname, f] : cfg.sparse_vectors) {
          w.Key(fname).BeginObject();
          w.Key("index").BeginObject();
          w.Key("full_scan_threshold").Uint(f.full_scan_threshold);
          w.Key("on_disk").Bool(false);
          w.Key("datatype").String("float32");
          w.EndObject();
          w.Key("modifier").String(f.modifier == SparseVectorConfig::Modifier::kIdf ? "idf"
                                                                                    : "none");
          w.EndObject();
        }
        w.EndObject();
      }
      w.Key("shard_number").Uint(1);
      w.Key("replication_factor").Uint(1);
      w.Key("write_consistency_factor").Uint(1);
      w.Key("on_disk_payload").Bool(true);
      w.EndObject();
      w.Key("hnsw_config").BeginObject();
      w.Key("m").Uint(16).Key("ef_construct").Uint(100).Key("full_scan_threshold").Uint(10000);
      w.Key("max_indexing_threads").Uint(0).Key("on_disk").Bool(false);
      w.EndObject();
      const auto dense_fields = cfg.Fields();
      const IndexOptions first_index =
          dense_fields.empty() ? IndexOptions() : dense_fields.begin()->second.index;
      w.Key("optimizer_config").BeginObject();
      w.Key("deleted_threshold").Double(0.2).Key("vacuum_min_vector_number").Uint(1000);
      w.Key("default_segment_number").Uint(0).Key("max_segment_size").Null();
      w.Key("memmap_threshold").Null().Key("indexing_threshold").Uint(first_index.ivf_threshold);
      w.Key("flush_interval_sec").Uint(5).Key("max_optimization_threads").Null();
      w.EndObject();
      w.Key("wal_config").BeginObject();
      w.Key("wal_capacity_mb").Uint(32).Key("wal_segments_ahead").Uint(0);
      w.EndObject();
      w.Key("quantization_config");
      if (single) {
        WriteQuantizationConfig(w, cfg.quantization);
      } else {
        w.Null();  // per vector, in params.vectors
      }
      w.EndObject();  // config
      w.Key("payload_schema").BeginObject();
      for (const auto& [key, pi] : info->payload_schema) {
        w.Key(key).BeginObject();
        w.Key("data_type").String(PayloadSchemaTypeName(pi.type));
        w.Key("params").BeginObject().Key("type").String(PayloadSchemaTypeName(pi.type)).EndObject();
        w.Key("points").Uint(pi.points);
        w.EndObject();
      }
      w.EndObject();
      // qvec's own figures: the first field's at the top (the only one of a
      // single-vector collection), every named field's under "vectors".
      w.Key("qvec").BeginObject();
      if (!info->fields.empty()) WriteFieldFigures(w, info->fields.begin()->second);
      if (!single) {
        w.Key("vectors").BeginObject();
        for (const auto& [fname, f] : info->fields) {
          w.Key(fname).BeginObject();
          WriteFieldFigures(w, f);
          w.Key("vectors_count").Uint(f.vectors_count);
          w.Key("memory_bytes").Uint(f.memory_bytes);
          w.EndObject();
        }
        w.EndObject();
      }
      if (!info->sparse_fields.empty()) {
        w.Key("sparse_vectors").BeginObject();
        for (const auto& [fname, f] : info->sparse_fields) {
          w.Key(fname).BeginObject();
          w.Key("vectors_count").Uint(f.vectors_count);
          w.Key("entries").Uint(f.entries);
          w.Key("memory_bytes").Uint(f.memory_bytes);
          w.EndObject();
        }
        w.EndObject();
      }
      w.Key("quarantined_points").Uint(info->quarantined_points);
      w.Key("memory_bytes").Uint(info->memory_bytes);
      w.Key("disk_bytes").Uint(info->disk_bytes);
      w.Key("simd").String(info->simd_level);
      w.EndObject();
      w.EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  static void WriteSnapshotDescription(JsonWriter& w, const SnapshotDescription& d) {
    w.BeginObject();
    w.Key("name").String(d.name);
    if (d.creation_time.empty()) {
      w.Key("creation_time").Null();
    } else {
      w.Key("creation_time").String(d.creation_time);
    }
    w.Key("size").Uint(d.size);
    if (d.checksum) {
      w.Key("checksum").String(*d.checksum);
    } else {
      w.Key("checksum").Null();
    }
    w.EndObject();
  }

  // `collection`: the collection's own name, "" for full snapshots.
  HttpResponse CreateSnapshot(const Call& call, const std::string& collection) {
    // No body fields exist (clients send {} or nothing); any field is refused.
    if (call.request.body.find_first_not_of(" \t\r\n") != std::string::npos) {
      auto body = ParseBody(Parser(), call.request.body);
      if (!body.ok()) return StatusResponse(body.status(), Seconds(call.start));
      if (!body->is_null()) {
        auto fields = RequestFields::Of(*body, "");
        Status none = fields.ok() ? fields->Finish() : fields.status();
        if (!none.ok()) return StatusResponse(none, Seconds(call.start));
      }
    }
    auto d = snapshots_.Create(collection);
    if (!d.ok()) return StatusResponse(d.status(), Seconds(call.start));
    JsonWriter w;
    WriteSnapshotDescription(w, *d);
    return OkResponse(w.Take(), Seconds(call.start));
  }

  HttpResponse ListSnapshots(const Call& call, const std::string& collection) {
    auto list = snapshots_.List(collection);
    if (!list.ok()) return StatusResponse(list.status(), Seconds(call.start));
    JsonWriter w;
    w.BeginArray();
    for (const SnapshotDescription& d : *list) WriteSnapshotDescription(w, d);
    w.EndArray();
    return OkResponse(w.Take(), Seconds(call.start));
  }

  HttpResponse DownloadSnapshot(const Call& call, const std::string& collection,
                                const std::string& snapshot) {
    auto path = snapshots_.PathOf(collection, snapshot);
    if (!path.ok()) return StatusResponse(path.status(), Seconds(call.start));
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.file_path = *path;
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + snapshot + "\"");
    return r;
  }

  HttpResponse DeleteSnapshot(const Call& call, const std::string& collection,
                              const std::string& snapshot) {
    Status s = snapshots_.Delete(collection, snapshot);
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  // POST /collections/{name}/snapshots/upload: multipart/form-data with the
  // file in a part named "snapshot" (Qdrant's form), or the bare file as
  // application/octet-stream. Bounded by the body limit.
  HttpResponse UploadSnapshot(const Call& call, const std::string& name) {
    std::string_view type = call.request.Header("content-type");
    std::string lower(type.substr(0, type.find(';')));
    std::erase_if(lower, [](char c) { return c == ' ' || c == '\t'; });
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view file;
    if (lower == "multipart/form-data") {
      auto part = SnapshotFiles::MultipartFile(type, call.request.body);
      if (!part.ok()) return StatusResponse(part.status(), Seconds(call.start));
      file = *part;
    } else if (lower == "application/octet-stream") {
      file = call.request.body;
    } else {
      return ErrorResponse(415,
                           "a snapshot upload is multipart/form-data (the file in a part named "
                           "\"snapshot\") or application/octet-stream, not '" +
                               std::string(type) + "'",
                           Seconds(call.start));
    }
    if (file.empty()) return ErrorResponse(400, "the uploaded snapshot is empty", Seconds(call.start));
    Status s = snapshots_.RecoverFromBytes(name, file, call.QueryParam("checksum"));
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  HttpResponse RecoverSnapshot(const Call& call, const std::string& name) {
    auto body = ParseBody(Parser(), call.request.body);
    if (!body.ok()) return StatusResponse(body.status(), Seconds(call.start));
    auto req = ParseSnapshotRecover(*body);
    if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
    Status s = snapshots_.RecoverFromLocation(name, req->location, req->checksum, req->api_key);
    if (!s.ok()) return StatusResponse(s, Seconds(call.start));
    return OkResponse("true", Seconds(call.start));
  }

  HttpResponse Upsert(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto points = ParsePoints(body);
      if (!points.ok()) return StatusResponse(points.status(), Seconds(call.start));
      Status s = c.Upsert(*points);
      if (!s.ok()) return StatusResponse(s, Seconds(call.start));
      return OkResponse(UpdateResult(), Seconds(call.start));
    });
  }

  HttpResponse Retrieve(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseRetrieve(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      auto records = c.Get(req->ids, req->with_payload.enabled, req->with_vector,
                           max_response_bytes_);
      if (!records.ok()) return StatusResponse(records.status(), Seconds(call.start));
      const OutputShape shape{req->with_payload, ArrayVectors(c.config()),
                              bool(req->with_vector)};
      JsonWriter w;
      w.BeginArray();
      for (const auto& r : *records) WriteRecord(w, r, shape);
      w.EndArray();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse GetPoint(const Call& call, const std::string& name, const std::string& id_text) {
    return WithCollection(call, name, [&](Collection& c) {
      auto id = ParsePointIdText(id_text);
      if (!id.ok()) return StatusResponse(id.status(), Seconds(call.start));
      auto records = c.Get(std::span<const PointId>(&*id, 1), true, true);
      if (!records.ok()) return StatusResponse(records.status(), Seconds(call.start));
      if (records->empty()) {
        return ErrorResponse(404, "no point with id " + id->ToString(), Seconds(call.start));
      }
      JsonWriter w;
      const PayloadSelector all_payload{true, {}, {}};
      WriteRecord(w, records->front(), OutputShape{all_payload, ArrayVectors(c.config()), true});
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse DeletePoints(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseDeletePoints(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      auto n = req->filter ? c.DeleteByFilter(*req->filter) : c.Delete(req->ids);
      if (!n.ok()) return StatusResponse(n.status(), Seconds(call.start));
      return OkResponse(UpdateResult(), Seconds(call.start));
    });
  }

  // The payload endpoints: set (merge), overwrite, delete keys, clear.
  template <typename Parse>
  HttpResponse PayloadRoute(const Call& call, const std::string& name, Parse&& parse) {
    return WithBody(call, name, [&](Collection& c, element body) {
      StatusOr<PayloadBody> req = parse(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      Status s = req->filter ? c.UpdatePayloadByFilter(*req->filter, req->update).status()
                             : c.UpdatePayload(req->ids, req->update);
      if (!s.ok()) return StatusResponse(s, Seconds(call.start));
      return OkResponse(UpdateResult(), Seconds(call.start));
    });
  }

  // Operations in order, each atomic on its own (as Qdrant): all are parsed
  // first, so a malformed one writes nothing; one failing when applied (a
  // missing point) stops the batch, the earlier ones stay applied, and the
  // error names it.
  HttpResponse UpdateBatchRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto ops = ParseUpdateBatch(body);
      if (!ops.ok()) return StatusResponse(ops.status(), Seconds(call.start));
      using K = BatchOperation::Kind;
      JsonWriter w;
      w.BeginArray();
      for (size_t i = 0; i < ops->size(); ++i) {
        BatchOperation& op = (*ops)[i];
        Status s;
        switch (op.kind) {
          case K::kUpsert:
            s = c.Upsert(op.points);
            break;
          case K::kDelete:
            s = op.selection.filter ? c.DeleteByFilter(*op.selection.filter).status()
                                    : c.Delete(op.selection.ids).status();
            break;
          case K::kPayload:
            s = op.payload.filter
                    ? c.UpdatePayloadByFilter(*op.payload.filter, op.payload.update).status()
                    : c.UpdatePayload(op.payload.ids, op.payload.update);
            break;
          case K::kUpdateVectors:
            s = c.UpdateVectors(op.points);
            break;
          case K::kDeleteVectors:
            s = op.vectors.filter ? c.DeleteVectorsByFilter(*op.vectors.filter, op.vectors.names).status()
                                  : c.DeleteVectors(op.vectors.ids, op.vectors.names);
            break;
        }
        if (!s.ok()) {
          return StatusResponse(
              s.Annotate("operations[" + std::to_string(i) + "]." + op.name +
                         (i > 0 ? " (operations[0.." + std::to_string(i - 1) +
                                      "] were applied)"
                                : "")),
              Seconds(call.start));
        }
        w.Raw(UpdateResult());
      }
      w.EndArray();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse UpdateVectorsRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto points = ParseUpdateVectors(body);
      if (!points.ok()) return StatusResponse(points.status(), Seconds(call.start));
      Status s = c.UpdateVectors(*points);
      if (!s.ok()) return StatusResponse(s, Seconds(call.start));
      return OkResponse(UpdateResult(), Seconds(call.start));
    });
  }

  HttpResponse DeleteVectorsRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseDeleteVectors(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      Status s = req->filter ? c.DeleteVectorsByFilter(*req->filter, req->names).status()
                             : c.DeleteVectors(req->ids, req->names);
      if (!s.ok()) return StatusResponse(s, Seconds(call.start));
      return OkResponse(UpdateResult(), Seconds(call.start));
    });
  }

  HttpResponse CountPoints(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto filter = ParseCount(body);
      if (!filter.ok()) return StatusResponse(filter.status(), Seconds(call.start));
      auto n = c.Count(*filter ? &**filter : nullptr);
      if (!n.ok()) return StatusResponse(n.status(), Seconds(call.start));
      return OkResponse("{\"count\":" + std::to_string(*n) + "}", Seconds(call.start));
    });
  }

  HttpResponse ScrollPoints(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseScroll(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      ScrollRequest& r = req->request;
      const OutputShape shape{req->with_payload, ArrayVectors(c.config()), bool(r.with_vector)};
      r.max_result_bytes = max_response_bytes_;
      auto page = c.Scroll(r);
      if (!page.ok()) return StatusResponse(page.status(), Seconds(call.start));
      JsonWriter w;
      w.BeginObject().Key("points").BeginArray();
      for (const auto& rec : page->points) WriteRecord(w, rec, shape);
      w.EndArray();
      w.Key("next_page_offset");
      if (page->next_page_offset) {
        WriteId(w, *page->next_page_offset);
      } else {
        w.Null();
      }
      w.EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse SearchRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = ParseSearchRequest(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      SearchRequest& req = parsed->request;
      req.max_result_bytes = max_response_bytes_;
      auto hits = c.Search(req);
      if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
      JsonWriter w;
      WriteScoredPoints(
          w, *hits,
          OutputShape{parsed->selector, ArrayVectors(c.config()), bool(req.with_vector)});
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // Replaces the point examples of the stages that name `lookup_from` by
  // those points' vectors in the other collection (pre-order, as parsed).
  Status ResolveLookups(QueryRequest* stage, const std::vector<std::optional<LookupFrom>>& lookups,
                        size_t* next) {
    const std::optional<LookupFrom>& lookup = lookups.at((*next)++);
    if (lookup && stage->query) {
      auto other = db_->GetCollection(lookup->collection);
      if (!other.ok()) {
        return NotFoundError("lookup_from.collection: collection '" + lookup->collection +
                             "' does not exist");
      }
      Collection& o = **other;
      const bool single = o.config().single_vector();
      auto resolve = [&](VectorInput* in) -> Status {
        if (!in->point) return Status::Ok();
        const PointId ids[] = {*in->point};
        QVEC_ASSIGN_OR_RETURN(auto recs, o.Get(ids, false, VectorSelector(true), 0));
        if (recs.empty()) {
          return NotFoundError("no point with id " + in->point->ToString() + " in collection '" +
                               lookup->collection + "' (lookup_from)");
        }
        const Record& rec = recs[0];
        const std::vector<float>* v = nullptr;
        if (single && lookup->vector.empty() && rec.vector) v = &*rec.vector;
        if (!single) {
          auto it = rec.vectors.find(lookup->vector);
          if (it != rec.vectors.end()) v = &it->second;
        }
        if (auto sp = rec.sparse_vectors.find(lookup->vector); sp != rec.sparse_vectors.end()) {
          in->sparse = sp->second;
          in->point.reset();
          return Status::Ok();
        }
        if (v == nullptr) {
          return InvalidArgumentError("lookup_from.vector: point " + in->point->ToString() +
                                      " of collection '" + lookup->collection +
                                      "' has no vector '" + lookup->vector + "'");
        }
        in->vector = *v;
        in->point.reset();
        return Status::Ok();
      };
      QuerySpec& q = *stage->query;
      QVEC_RETURN_IF_ERROR(resolve(&q.nearest));
      QVEC_RETURN_IF_ERROR(resolve(&q.target));
      for (auto& in : q.positive) QVEC_RETURN_IF_ERROR(resolve(&in));
      for (auto& in : q.negative) QVEC_RETURN_IF_ERROR(resolve(&in));
      for (auto& [p, n] : q.context) {
        QVEC_RETURN_IF_ERROR(resolve(&p));
        QVEC_RETURN_IF_ERROR(resolve(&n));
      }
    }
    for (QueryRequest& p : stage->prefetch) QVEC_RETURN_IF_ERROR(ResolveLookups(&p, lookups, next));
    return Status::Ok();
  }

  StatusOr<std::vector<ScoredPoint>> RunParsedQuery(Collection& c, ParsedQuery* parsed) {
    size_t next = 0;
    QVEC_RETURN_IF_ERROR(ResolveLookups(&parsed->request, parsed->lookups, &next));
    parsed->request.max_result_bytes = max_response_bytes_;
    return c.Query(parsed->request);
  }

  HttpResponse QueryRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = ParseQueryRequest(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      auto hits = RunParsedQuery(c, &*parsed);
      if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
      JsonWriter w;
      w.BeginObject().Key("points");
      WriteScoredPoints(w, *hits,
                        OutputShape{parsed->selector, ArrayVectors(c.config()),
                                    bool(parsed->request.with_vector)});
      w.EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // The distance matrix of a random sample (Qdrant's search/matrix): each
  // sampled point's `limit` nearest among the sample (itself left out).
  HttpResponse SearchMatrixRoute(const Call& call, const std::string& name, bool offsets) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseSearchMatrix(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      // The sample: points passing the filter that carry the vector.
      QueryRequest sample;
      sample.query = QuerySpec();
      sample.query->kind = QuerySpec::Kind::kSample;
      sample.limit = req->sample;
      Condition has_vector;
      has_vector.kind = Condition::Kind::kHasVector;
      has_vector.key = req->vector_name;
      Filter f = req->filter.value_or(Filter());
      f.must.push_back(has_vector);
      sample.filter = std::move(f);
      auto sampled = c.Query(sample);
      if (!sampled.ok()) return StatusResponse(sampled.status(), Seconds(call.start));
      std::vector<PointId> ids;
      for (const auto& p : *sampled) ids.push_back(p.id);
      std::sort(ids.begin(), ids.end());
      std::map<PointId, size_t> index;
      for (size_t i = 0; i < ids.size(); ++i) index[ids[i]] = i;
      Condition among;
      among.kind = Condition::Kind::kHasId;
      among.ids = ids;
      std::vector<std::tuple<size_t, size_t, float>> cells;
      for (size_t i = 0; i < ids.size(); ++i) {
        QueryRequest q;
        q.query = QuerySpec();
        q.query->nearest.point = ids[i];
        q.vector_name = req->vector_name;
        q.limit = req->limit;
        q.filter = Filter();
        q.filter->must.push_back(among);
        auto hits = c.Query(q);
        if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
        for (const auto& h : *hits) cells.emplace_back(i, index.at(h.id), h.score);
      }
      JsonWriter w;
      w.BeginObject();
      if (offsets) {
        w.Key("offsets_row").BeginArray();
        for (const auto& [a, b, s] : cells) w.Uint(a);
        w.EndArray().Key("offsets_col").BeginArray();
        for (const auto& [a, b, s] : cells) w.Uint(b);
        w.EndArray().Key("scores").BeginArray();
        for (const auto& [a, b, s] : cells) w.Float(s);
        w.EndArray().Key("ids").BeginArray();
        for (const PointId& id : ids) WriteId(w, id);
        w.EndArray();
      } else {
        w.Key("pairs").BeginArray();
        for (const auto& [a, b, s] : cells) {
          w.BeginObject().Key("a");
          WriteId(w, ids[a]);
          w.Key("b");
          WriteId(w, ids[b]);
          w.Key("score").Float(s);
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // Writes a facet value or a group id (string or integer).
  static void WriteMatchValue(JsonWriter& w, const MatchValue& v) {
    if (const auto* str = std::get_if<std::string>(&v)) {
      w.String(*str);
    } else if (const auto* i = std::get_if<int64_t>(&v)) {
      w.Int(*i);
    } else {
      w.Bool(std::get<bool>(v));
    }
  }

  HttpResponse FacetRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseFacet(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      auto hits = c.Facet(req->key, req->filter ? &*req->filter : nullptr, req->limit);
      if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
      JsonWriter w;
      w.BeginObject().Key("hits").BeginArray();
      for (const FacetHit& h : *hits) {
        w.BeginObject().Key("value");
        WriteMatchValue(w, h.value);
        w.Key("count").Uint(h.count);
        w.EndObject();
      }
      w.EndArray().EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // qvec's own: the IVF list sizes of a field and the lists of given points
  // (the dashboard's map colours points by them).
  HttpResponse ListsRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto req = ParseListsBody(body);
      if (!req.ok()) return StatusResponse(req.status(), Seconds(call.start));
      auto lists = c.ListsOf(req->vector_name, req->ids, req->with_centroids);
      if (!lists.ok()) return StatusResponse(lists.status(), Seconds(call.start));
      JsonWriter w;
      w.BeginObject().Key("list_sizes").BeginArray();
      for (uint32_t n : lists->list_sizes) w.Uint(n);
      w.EndArray().Key("lists").BeginArray();
      for (int64_t l : lists->point_lists) w.Int(l);
      w.EndArray();
      if (req->with_centroids) {
        const size_t k = lists->list_sizes.size();
        const size_t dim = k == 0 ? 0 : lists->centroids.size() / k;
        w.Key("centroids").BeginArray();
        for (size_t c = 0; c < k && dim > 0; ++c) {
          w.BeginArray();
          for (size_t d = 0; d < dim; ++d) w.Float(lists->centroids[c * dim + d]);
          w.EndArray();
        }
        w.EndArray();
      }
      w.EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // The older recommend / discover endpoints: an array of scored points.
  HttpResponse LegacyQueryRoute(const Call& call, const std::string& name, bool discover) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = discover ? ParseDiscoverRequest(body) : ParseRecommendRequest(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      auto hits = RunParsedQuery(c, &*parsed);
      if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
      JsonWriter w;
      WriteScoredPoints(w, *hits,
                        OutputShape{parsed->selector, ArrayVectors(c.config()),
                                    bool(parsed->request.with_vector)});
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse LegacyBatchRoute(const Call& call, const std::string& name, bool discover) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = ParseLegacyBatch(body, discover);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      return RunQueryBatch(call, c, &*parsed, /*points_objects=*/false);
    });
  }

  // Runs every query of a batch, bounded in answer size as one answer; the
  // Query API wraps each list as {"points": [...]}, the older endpoints not.
  HttpResponse RunQueryBatch(const Call& call, Collection& c, std::vector<ParsedQuery>* parsed,
                             bool points_objects) {
    std::vector<std::vector<ScoredPoint>> results;
    size_t bytes = 0;
    for (ParsedQuery& one : *parsed) {
      auto hits = RunParsedQuery(c, &one);
      if (!hits.ok()) return StatusResponse(hits.status(), Seconds(call.start));
      for (const auto& h : *hits) bytes += 48 + (h.payload ? h.payload->size() : 0);
      if (max_response_bytes_ != 0 && bytes > max_response_bytes_) {
        return StatusResponse(OutOfRangeError("the answer would be larger than the result size "
                                              "limit: ask for fewer points (limit), or leave "
                                              "out payloads or vectors"),
                              Seconds(call.start));
      }
      results.push_back(std::move(*hits));
    }
    const bool single_vector = ArrayVectors(c.config());
    JsonWriter w;
    w.BeginArray();
    for (size_t i = 0; i < results.size(); ++i) {
      if (points_objects) w.BeginObject().Key("points");
      WriteScoredPoints(w, results[i],
                        OutputShape{(*parsed)[i].selector, single_vector,
                                    bool((*parsed)[i].request.with_vector)});
      if (points_objects) w.EndObject();
    }
    w.EndArray();
    return OkResponse(w.Take(), Seconds(call.start));
  }

  // .../points/{query,search,recommend}/groups: {"groups": [{id, hits, lookup?}]}.
  HttpResponse GroupsRoute(const Call& call, const std::string& name, const std::string& op) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = op == "query"    ? ParseQueryGroupsRequest(body)
                    : op == "search" ? ParseSearchGroupsRequest(body)
                                     : ParseRecommendGroupsRequest(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      ParsedQuery& q = parsed->query;
      size_t next = 0;
      Status resolved = ResolveLookups(&q.request, q.lookups, &next);
      if (!resolved.ok()) return StatusResponse(resolved, Seconds(call.start));
      q.request.max_result_bytes = max_response_bytes_;
      auto groups = c.QueryGroups(q.request, parsed->group);
      if (!groups.ok()) return StatusResponse(groups.status(), Seconds(call.start));
      // with_lookup: the point of the other collection whose id is the group's.
      std::shared_ptr<Collection> other;
      std::map<size_t, Record> lookups;
      if (parsed->with_lookup) {
        auto o = db_->GetCollection(parsed->with_lookup->collection);
        if (!o.ok()) {
          return ErrorResponse(404, "with_lookup: collection '" +
                                        parsed->with_lookup->collection + "' does not exist",
                               Seconds(call.start));
        }
        other = *o;
        std::vector<PointId> ids;
        std::vector<size_t> which;
        for (size_t i = 0; i < groups->size(); ++i) {
          const MatchValue& v = (*groups)[i].id;
          std::optional<PointId> id;
          if (const auto* n = std::get_if<int64_t>(&v); n != nullptr && *n >= 0) {
            id = PointId::Num(static_cast<uint64_t>(*n));
          } else if (const auto* str = std::get_if<std::string>(&v)) {
            auto u = PointId::ParseUuid(*str);
            if (u.ok()) id = *u;
          }
          if (id) {
            ids.push_back(*id);
            which.push_back(i);
          }
        }
        auto recs = other->Get(ids, parsed->lookup_payload.enabled, parsed->lookup_vectors,
                               max_response_bytes_);
        if (!recs.ok()) return StatusResponse(recs.status(), Seconds(call.start));
        for (Record& r : *recs) {
          for (size_t j = 0; j < ids.size(); ++j) {
            if (ids[j] == r.id) lookups[which[j]] = r;
          }
        }
      }
      const bool single_vector = ArrayVectors(c.config());
      JsonWriter w;
      w.BeginObject().Key("groups").BeginArray();
      for (size_t i = 0; i < groups->size(); ++i) {
        const PointGroup& g = (*groups)[i];
        w.BeginObject().Key("id");
        WriteMatchValue(w, g.id);
        w.Key("hits");
        WriteScoredPoints(w, g.hits,
                          OutputShape{q.selector, single_vector, bool(q.request.with_vector)});
        if (auto it = lookups.find(i); it != lookups.end()) {
          w.Key("lookup");
          WriteRecord(w, it->second,
                      OutputShape{parsed->lookup_payload, ArrayVectors(other->config()),
                                  bool(parsed->lookup_vectors)});
        }
        w.EndObject();
      }
      w.EndArray().EndObject();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  HttpResponse QueryBatchRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = ParseQueryBatch(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      return RunQueryBatch(call, c, &*parsed, /*points_objects=*/true);
    });
  }

  HttpResponse SearchBatchRoute(const Call& call, const std::string& name) {
    return WithBody(call, name, [&](Collection& c, element body) {
      auto parsed = ParseSearchBatch(body);
      if (!parsed.ok()) return StatusResponse(parsed.status(), Seconds(call.start));
      std::vector<SearchRequest> reqs;
      reqs.reserve(parsed->size());
      for (auto& one : *parsed) {
        one.request.max_result_bytes = max_response_bytes_;
        reqs.push_back(std::move(one.request));
      }
      const bool single_vector = ArrayVectors(c.config());
      auto results = c.SearchBatch(reqs);
      if (!results.ok()) return StatusResponse(results.status(), Seconds(call.start));
      JsonWriter w;
      w.BeginArray();
      for (size_t i = 0; i < results->size(); ++i) {
        WriteScoredPoints(
            w, (*results)[i],
            OutputShape{(*parsed)[i].selector, single_vector, bool(reqs[i].with_vector)});
      }
      w.EndArray();
      return OkResponse(w.Take(), Seconds(call.start));
    });
  }

  // ---- helpers ----

  static simdjson::dom::parser& Parser() {
    thread_local simdjson::dom::parser parser = [] {
      simdjson::dom::parser p;
      if (p.allocate(1 << 16, kMaxJsonDepth) != simdjson::SUCCESS) std::abort();
      return p;
    }();
    return parser;
  }

  template <typename Fn>
  HttpResponse WithCollection(const Call& call, const std::string& name, Fn&& fn) {
    auto c = db_->GetCollection(name);
    if (!c.ok()) {
      return ErrorResponse(404, "Collection `" + name + "` doesn't exist!", Seconds(call.start));
    }
    return fn(**c);
  }

  template <typename Fn>
  HttpResponse WithBody(const Call& call, const std::string& name, Fn&& fn) {
    return WithCollection(call, name, [&](Collection& c) {
      auto body = ParseBody(Parser(), call.request.body);
      if (!body.ok()) return StatusResponse(body.status(), Seconds(call.start));
      return fn(c, *body);
    });
  }

  std::shared_ptr<Database> db_;
  SnapshotFiles snapshots_;
  const size_t max_response_bytes_;
  // For /telemetry: a random id of this process, and when it started.
  const std::string instance_id_ = RandomUuid();
  const std::string startup_time_ = NowRfc3339();
  Metrics metrics_;
};

}  // namespace

std::shared_ptr<RequestHandler> MakeRouterFor(std::shared_ptr<Database> db,
                                              std::string snapshots_dir,
                                              size_t max_response_bytes) {
  return std::make_shared<Router>(std::move(db), std::move(snapshots_dir), max_response_bytes);
}

StatusOr<std::shared_ptr<RequestHandler>> MakeRouter(const RouterOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return UnavailableError("cannot create data directory " + options.data_dir + ": " +
                            ec.message());
  }
  auto db = Database::Open(options.database, options.data_dir);
  if (!db.ok()) return db.status();
  std::string snapshots = options.snapshots_dir;
  if (snapshots.empty()) {
    std::filesystem::path p = std::filesystem::absolute(options.data_dir, ec).lexically_normal();
    if (p.has_filename() == false) p = p.parent_path();
    snapshots = p.string() + "-snapshots";
  }
  return MakeRouterFor(std::shared_ptr<Database>(std::move(*db)), snapshots,
                       options.max_response_bytes);
}

}  // namespace qvec::server
