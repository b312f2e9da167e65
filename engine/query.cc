#include "engine/query.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/datetime.h"
#include "engine/payload_index.h"
#include "qvec/options.h"

namespace qvec::engine {
namespace {

struct Hit {
  Hit() = default;
  Hit(PointId i, float s, std::optional<double> o = std::nullopt)
      : id(std::move(i)), score(s), order_value(o) {}
  PointId id;
  float score = 0;
  std::optional<double> order_value;
};
using Hits = std::vector<Hit>;

// A resolved example or query: dense, or sparse for a sparse field.
struct QueryVector {
  std::vector<float> dense;
  std::optional<SparseVector> sparse;
};
using ScoreMap = std::unordered_map<PointId, float, PointIdHash>;

bool LowerIsBetter(Distance d) { return d == Distance::kEuclid || d == Distance::kManhattan; }

// Qdrant's fast sigmoid x / (1 + |x|), in (-1, 1), and its scaled form in
// (0, 1).
float FastSigmoid(float x) { return x / (1.0f + std::fabs(x)); }
float ScaledFastSigmoid(float x) { return 0.5f * (FastSigmoid(x) + 1.0f); }

// The raw similarity Qdrant's custom objectives use, from a search score:
// Cosine and Dot as they are, Euclid -squared distance, Manhattan -distance.
float RawSimilarity(Distance d, float score) {
  switch (d) {
    case Distance::kEuclid:
      return -score * score;
    case Distance::kManhattan:
      return -score;
    default:
      return score;
  }
}

// a AND b (either may be unset).
std::optional<Filter> And(const std::optional<Filter>& a, const std::optional<Filter>& b) {
  if (!a) return b;
  if (!b) return a;
  Filter f;
  for (const Filter* part : {&*a, &*b}) {
    Condition nested;
    nested.kind = Condition::Kind::kNested;
    nested.filter = std::make_shared<Filter>(*part);
    f.must.push_back(std::move(nested));
  }
  return f;
}

Condition HasIds(std::span<const PointId> ids) {
  Condition c;
  c.kind = Condition::Kind::kHasId;
  c.ids.assign(ids.begin(), ids.end());
  return c;
}

// `base` (may be unset) AND the point is one of `ids` AND none of `exclude`.
Filter Restrict(const std::optional<Filter>& base, const std::vector<PointId>* ids,
                const std::vector<PointId>& exclude) {
  Filter f;
  if (base) {
    Condition nested;
    nested.kind = Condition::Kind::kNested;
    nested.filter = std::make_shared<Filter>(*base);
    f.must.push_back(std::move(nested));
  }
  if (ids != nullptr) f.must.push_back(HasIds(*ids));
  if (!exclude.empty()) f.must_not.push_back(HasIds(exclude));
  return f;
}

std::vector<PointId> Union(const std::vector<Hits>& lists) {
  std::vector<PointId> out;
  std::unordered_set<PointId, PointIdHash> seen;
  for (const Hits& l : lists) {
    for (const Hit& h : l) {
      if (seen.insert(h.id).second) out.push_back(h.id);
    }
  }
  return out;
}

void SortBest(Hits* hits, bool lower_first) {
  std::stable_sort(hits->begin(), hits->end(), [&](const Hit& a, const Hit& b) {
    if (a.score != b.score) return lower_first ? a.score < b.score : a.score > b.score;
    return a.id < b.id;
  });
}

// "$score" -> 0, "$score[i]" -> i; nullopt for a payload key; an error for
// another "$score..." spelling.
StatusOr<std::optional<size_t>> ScoreIndex(const std::string& name) {
  if (name.rfind("$score", 0) != 0) return std::optional<size_t>();
  const std::string rest = name.substr(6);
  if (rest.empty()) return std::optional<size_t>(0);
  size_t i = 0;
  if (rest.size() < 3 || rest.front() != '[' || rest.back() != ']' ||
      rest.find_first_not_of("0123456789", 1) != rest.size() - 1 || rest.size() > 12) {
    return InvalidArgumentError("query.formula: invalid score variable '" + name +
                                "' (use $score or $score[i])");
  }
  i = static_cast<size_t>(std::stoull(rest.substr(1, rest.size() - 2)));
  return std::optional<size_t>(i);
}

// Evaluates a formula for one point at a time (see Expression).
class FormulaEvaluator {
 public:
  FormulaEvaluator(const QuerySpec& q, const std::vector<ScoreMap>& scores)
      : q_(q), scores_(scores) {}

  // Checks the expression once (score variables, decay parameters, date
  // times, defaults) and collects its conditions.
  Status Prepare() {
    for (const auto& [name, text] : q_.formula_defaults) {
      defaults_[name] = ExtractField("{\"v\":" + text + "}", "v");
    }
    return Check(q_.formula, 0);
  }
  bool NeedsPayload() const { return needs_payload_; }
  const std::vector<const Filter*>& conditions() const { return conditions_; }

  // The point's score; `payload` is its JSON (empty when not needed) and
  // `passes[i]` whether it passes conditions()[i].
  StatusOr<double> Evaluate(const PointId& id, std::string_view payload,
                            const std::vector<bool>& passes) {
    id_ = &id;
    payload_ = payload;
    passes_ = &passes;
    condition_ = 0;
    return Eval(q_.formula);
  }

 private:
  using K = Expression::Kind;

  Status Check(const Expression& e, int depth) {
    if (depth > 64) return InvalidArgumentError("query.formula: nested more than 64 levels deep");
    switch (e.kind) {
      case K::kVariable: {
        QVEC_ASSIGN_OR_RETURN(auto index, ScoreIndex(e.name));
        if (!index) needs_payload_ = true;
        break;
      }
      case K::kCondition:
        if (e.condition == nullptr) return InvalidArgumentError("query.formula: empty condition");
        conditions_.push_back(e.condition.get());
        break;
      case K::kGeoDistance:
      case K::kDatetimeKey:
        needs_payload_ = true;
        break;
      case K::kDatetime:
        if (!datetime::ParseMicros(e.name)) {
          return InvalidArgumentError("query.formula: datetime '" + e.name +
                                      "' is not an RFC 3339 date-time");
        }
        break;
      case K::kLinDecay:
      case K::kExpDecay:
      case K::kGaussDecay:
        if (e.midpoint && !(*e.midpoint > 0 && *e.midpoint < 1)) {
          return InvalidArgumentError("query.formula: a decay's midpoint must be in (0, 1)");
        }
        if (e.scale && !(*e.scale > 0)) {
          return InvalidArgumentError("query.formula: a decay's scale must be positive");
        }
        break;
      default:
        break;
    }
    for (const Expression& a : e.args) QVEC_RETURN_IF_ERROR(Check(a, depth + 1));
    return Status::Ok();
  }

  static Status NotFinite(const std::string& what) {
    return InvalidArgumentError("query.formula: " + what + " is not a finite number");
  }

  // The single value at payload key `key`, else its default.
  const FieldValues* Lookup(const std::string& key, FieldValues* scratch) {
    *scratch = ExtractField(payload_, key);
    if (!scratch->values.empty() || !scratch->geo.empty()) return scratch;
    auto it = defaults_.find(key);
    return it == defaults_.end() ? nullptr : &it->second;
  }

  StatusOr<double> Number(const std::string& key) {
    FieldValues scratch;
    const FieldValues* v = Lookup(key, &scratch);
    if (v == nullptr || v->values.empty()) {
      return InvalidArgumentError("query.formula: point " + id_->ToString() + " has no value at '" +
                                  key + "' and the formula has no default for it");
    }
    if (v->values.size() == 1) {
      if (const auto* i = std::get_if<int64_t>(&v->values[0])) return static_cast<double>(*i);
      if (const auto* d = std::get_if<double>(&v->values[0])) return *d;
    }
    return InvalidArgumentError("query.formula: the value at '" + key + "' of point " +
                                id_->ToString() + " is not a number");
  }

  StatusOr<double> Eval(const Expression& e) {
    switch (e.kind) {
      case K::kConstant:
        return e.constant;
      case K::kVariable: {
        QVEC_ASSIGN_OR_RETURN(auto index, ScoreIndex(e.name));
        if (!index) return Number(e.name);
        if (*index < scores_.size()) {
          auto it = scores_[*index].find(*id_);
          if (it != scores_[*index].end()) return double{it->second};
        }
        auto d = defaults_.find(e.name);
        if (d != defaults_.end() && d->second.values.size() == 1) {
          if (const auto* i = std::get_if<int64_t>(&d->second.values[0])) return double(*i);
          if (const auto* x = std::get_if<double>(&d->second.values[0])) return *x;
        }
        return 0.0;
      }
      case K::kCondition:
        return (*passes_)[condition_++] ? 1.0 : 0.0;
      case K::kMult: {
        double p = 1;
        // Conditions later in a product that stops early are not read:
        // count them off so the next ones line up.
        for (size_t i = 0; i < e.args.size(); ++i) {
          QVEC_ASSIGN_OR_RETURN(double f, Eval(e.args[i]));
          if (f == 0) {
            for (size_t j = i + 1; j < e.args.size(); ++j) condition_ += CountConditions(e.args[j]);
            return 0.0;
          }
          p *= f;
        }
        return p;
      }
      case K::kSum: {
        double sum = 0;
        for (const Expression& a : e.args) {
          QVEC_ASSIGN_OR_RETURN(double x, Eval(a));
          sum += x;
        }
        return sum;
      }
      case K::kNeg: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        return -x;
      }
      case K::kAbs: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        return std::fabs(x);
      }
      case K::kDiv: {
        QVEC_ASSIGN_OR_RETURN(double left, Eval(e.args.at(0)));
        if (left == 0) {
          condition_ += CountConditions(e.args.at(1));
          return 0.0;
        }
        QVEC_ASSIGN_OR_RETURN(double right, Eval(e.args.at(1)));
        if (right == 0) {
          if (e.by_zero_default) return *e.by_zero_default;
          return NotFinite(fmt(left) + " / 0");
        }
        const double x = left / right;
        if (!std::isfinite(x)) return NotFinite(fmt(left) + " / " + fmt(right));
        return x;
      }
      case K::kSqrt: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        if (x < 0) return NotFinite("sqrt(" + fmt(x) + ")");
        return std::sqrt(x);
      }
      case K::kPow: {
        QVEC_ASSIGN_OR_RETURN(double base, Eval(e.args.at(0)));
        QVEC_ASSIGN_OR_RETURN(double exponent, Eval(e.args.at(1)));
        const bool ok = base >= 0 || (base != 0 && exponent == std::floor(exponent));
        const double x = ok ? std::pow(base, exponent) : NAN;
        if (!std::isfinite(x)) return NotFinite(fmt(base) + " ^ " + fmt(exponent));
        return x;
      }
      case K::kExp: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        const double y = std::exp(x);
        if (!std::isfinite(y)) return NotFinite("exp(" + fmt(x) + ")");
        return y;
      }
      case K::kLog10:
      case K::kLn: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        const char* name = e.kind == K::kLn ? "ln" : "log10";
        if (!(x > 0)) return NotFinite(std::string(name) + "(" + fmt(x) + ")");
        return e.kind == K::kLn ? std::log(x) : std::log10(x);
      }
      case K::kGeoDistance: {
        FieldValues scratch;
        const FieldValues* v = Lookup(e.name, &scratch);
        if (v == nullptr || v->geo.size() != 1) {
          return InvalidArgumentError("query.formula: expected one geo point at '" + e.name +
                                      "' of point " + id_->ToString() +
                                      " (in the payload or the formula defaults)");
        }
        return GeoDistanceMeters(e.origin, v->geo[0]);
      }
      case K::kDatetime:
        return static_cast<double>(*datetime::ParseMicros(e.name)) / 1e6;
      case K::kDatetimeKey: {
        FieldValues scratch;
        const FieldValues* v = Lookup(e.name, &scratch);
        std::optional<int64_t> micros;
        if (v != nullptr && v->values.size() == 1) {
          if (const auto* text = std::get_if<std::string>(&v->values[0])) micros = datetime::ParseMicros(*text);
        }
        if (!micros) {
          return InvalidArgumentError("query.formula: expected a date-time at '" + e.name +
                                      "' of point " + id_->ToString() +
                                      " (in the payload or the formula defaults)");
        }
        return static_cast<double>(*micros) / 1e6;
      }
      case K::kLinDecay:
      case K::kExpDecay:
      case K::kGaussDecay: {
        QVEC_ASSIGN_OR_RETURN(double x, Eval(e.args.at(0)));
        double target = 0;
        if (e.args.size() > 1) {
          QVEC_ASSIGN_OR_RETURN(target, Eval(e.args[1]));
        }
        const double midpoint = e.midpoint.value_or(0.5);
        const double scale = e.scale.value_or(1.0);
        const double diff = x - target;
        if (e.kind == K::kLinDecay) {
          return std::max(0.0, 1.0 - (1.0 - midpoint) / scale * std::fabs(diff));
        }
        if (e.kind == K::kExpDecay) return std::exp(std::log(midpoint) / scale * std::fabs(diff));
        return std::exp(std::log(midpoint) / (scale * scale) * diff * diff);
      }
    }
    return InternalError("unknown formula expression");
  }

  static size_t CountConditions(const Expression& e) {
    size_t n = e.kind == K::kCondition ? 1 : 0;
    for (const Expression& a : e.args) n += CountConditions(a);
    return n;
  }
  static std::string fmt(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }

  const QuerySpec& q_;
  const std::vector<ScoreMap>& scores_;
  std::map<std::string, FieldValues> defaults_;
  std::vector<const Filter*> conditions_;  // in evaluation (preorder) order
  bool needs_payload_ = false;
  const PointId* id_ = nullptr;
  std::string_view payload_;
  const std::vector<bool>* passes_ = nullptr;
  size_t condition_ = 0;
};

class Runner {
 public:
  explicit Runner(Collection& c) : c_(c), config_(c.config()), fields_(config_.Fields()) {}

  // The stage's points, best first, at most `want`. `inherited` is the
  // outer stages' filter (AND-merged into this one's, as Qdrant does) and
  // `exclude` the outer stages' example points.
  StatusOr<Hits> Stage(const QueryRequest& r, size_t want, const std::optional<Filter>& inherited,
                       const std::vector<PointId>& exclude, int depth);

  // Whether the stage's scores are lower-is-better (nearest on a distance).
  bool LowerFirst(const QueryRequest& r) const {
    if (r.query) {
      return r.query->kind == QuerySpec::Kind::kNearest && DistanceOf(r) &&
             LowerIsBetter(*DistanceOf(r));
    }
    return r.prefetch.size() == 1 && LowerFirst(r.prefetch[0]);
  }

 private:
  std::optional<qvec::Distance> DistanceOf(const QueryRequest& r) const {
    auto it = fields_.find(r.vector_name);
    if (it == fields_.end()) return std::nullopt;
    return it->second.distance;
  }
  bool IsSparse(const std::string& name) const { return config_.sparse_vectors.count(name) > 0; }
  // The field's distance; Dot for a sparse field.
  StatusOr<Distance> FieldDistance(const std::string& name) const {
    if (IsSparse(name)) return Distance::kDot;
    QVEC_ASSIGN_OR_RETURN(const VectorFieldConfig* f, Field(name));
    return f->distance;
  }
  StatusOr<const VectorFieldConfig*> Field(const std::string& name) const {
    auto it = fields_.find(name);
    if (it == fields_.end()) {
      if (IsSparse(name)) {
        return InvalidArgumentError("using: '" + name +
                                    "' is a sparse vector field, which this query form does not "
                                    "support");
      }
      return InvalidArgumentError(
          name.empty() ? "using: the collection has named vectors; name the one to query"
                       : "using: the collection has no vector field '" + name + "'");
    }
    return &it->second;
  }
  // The vector of an example (its point's stored vector of `field`).
  StatusOr<QueryVector> Resolve(const std::string& field, const VectorInput& in,
                                std::vector<PointId>* examples);
  // Nearest points to `v` among `candidates` (all points when null),
  // excluding `exclude`, passing the stage's filter.
  StatusOr<Hits> Nearest(const QueryRequest& r, const QueryVector& v, size_t want,
                         const std::vector<PointId>* candidates,
                         const std::vector<PointId>& exclude, const std::optional<Mmr>& mmr);
  // Exact scores of `ids` (those passing the stage's filter) against `v`.
  StatusOr<ScoreMap> Scores(const QueryRequest& r, const QueryVector& v,
                            const std::vector<PointId>& ids);
  // The points to rank by a custom objective: the prefetched ones, every
  // point of a small collection, else the union of the examples' nearest.
  StatusOr<std::vector<PointId>> Candidates(const QueryRequest& r, const std::vector<Hits>& pre,
                                            const std::vector<QueryVector>& examples, size_t want,
                                            const std::vector<PointId>& exclude);
  // `ids` that pass the stage's filter, in their order.
  StatusOr<std::vector<PointId>> Passing(const std::optional<Filter>& filter,
                                         const std::vector<PointId>& ids);
  StatusOr<Hits> Fuse(const QueryRequest& r, const std::vector<Hits>& pre, size_t want);
  StatusOr<Hits> OrderBy(const QueryRequest& r, const std::vector<Hits>& pre, bool prefetched,
                         size_t want);
  StatusOr<Hits> Sample(const QueryRequest& r, const std::vector<Hits>& pre, bool prefetched,
                        size_t want);
  StatusOr<Hits> Formula(const QueryRequest& r, const std::vector<Hits>& pre, size_t want);
  StatusOr<Hits> CustomObjective(const QueryRequest& r, const std::vector<Hits>& pre, size_t want,
                                 const std::vector<PointId>& exclude);
  // The example points' ids of a stage's query.
  static std::vector<PointId> ExampleIds(const QuerySpec& q);

  Collection& c_;
  const CollectionConfig config_;
  const std::map<std::string, VectorFieldConfig> fields_;
};

StatusOr<QueryVector> Runner::Resolve(const std::string& field, const VectorInput& in,
                                      std::vector<PointId>* examples) {
  const bool sparse = IsSparse(field);
  if (in.sparse && !sparse) {
    return InvalidArgumentError("a sparse vector cannot query the dense vector field" +
                                (field.empty() ? std::string() : " '" + field + "'"));
  }
  if (!in.point && sparse && !in.sparse) {
    return InvalidArgumentError("'" + field +
                                "' is a sparse vector field: query it with {\"indices\": [...], "
                                "\"values\": [...]} or a point id");
  }
  if (!in.point) return QueryVector{in.vector, in.sparse};
  const PointId ids[] = {*in.point};
  QVEC_ASSIGN_OR_RETURN(auto records,
                        c_.Get(ids, false, VectorSelector(std::vector<std::string>{field}), 0));
  if (records.empty()) return NotFoundError("no point with id " + in.point->ToString());
  if (examples != nullptr) examples->push_back(*in.point);
  const Record& rec = records[0];
  if (sparse) {
    if (auto it = rec.sparse_vectors.find(field); it != rec.sparse_vectors.end()) {
      return QueryVector{{}, it->second};
    }
  } else if (config_.single_vector()) {
    if (rec.vector) return QueryVector{*rec.vector, std::nullopt};
  } else if (auto it = rec.vectors.find(field); it != rec.vectors.end()) {
    return QueryVector{it->second, std::nullopt};
  }
  return InvalidArgumentError("point " + in.point->ToString() + " has no vector" +
                              (field.empty() ? "" : " '" + field + "'"));
}

StatusOr<Hits> Runner::Nearest(const QueryRequest& r, const QueryVector& v, size_t want,
                               const std::vector<PointId>* candidates,
                               const std::vector<PointId>& exclude, const std::optional<Mmr>& mmr) {
  if (candidates != nullptr && candidates->empty()) return Hits{};
  SearchRequest s;
  s.vector_name = r.vector_name;
  s.vector = v.dense;
  s.sparse_vector = v.sparse;
  s.limit = std::min(std::max<size_t>(want, 1), kMaxSearchLimit);
  s.params = r.params;
  s.score_threshold = r.score_threshold;
  s.mmr = mmr;
  if (candidates != nullptr) s.params.exact = true;  // score exactly what was prefetched
  if (candidates != nullptr || !exclude.empty() || r.filter) {
    s.filter = Restrict(r.filter, candidates, exclude);
  }
  QVEC_ASSIGN_OR_RETURN(auto found, c_.Search(s));
  Hits out;
  out.reserve(found.size());
  for (const ScoredPoint& p : found) out.push_back({p.id, p.score});
  return out;
}

StatusOr<ScoreMap> Runner::Scores(const QueryRequest& r, const QueryVector& v,
                                  const std::vector<PointId>& ids) {
  ScoreMap out;
  for (size_t start = 0; start < ids.size(); start += kMaxSearchLimit) {
    const size_t end = std::min(ids.size(), start + kMaxSearchLimit);
    std::vector<PointId> chunk(ids.begin() + start, ids.begin() + end);
    SearchRequest s;
    s.vector_name = r.vector_name;
    s.vector = v.dense;
    s.sparse_vector = v.sparse;
    s.limit = chunk.size();
    s.params = r.params;
    s.params.exact = true;
    s.filter = Restrict(r.filter, &chunk, {});
    QVEC_ASSIGN_OR_RETURN(auto found, c_.Search(s));
    for (const ScoredPoint& p : found) out[p.id] = p.score;
  }
  return out;
}

StatusOr<std::vector<PointId>> Runner::Passing(const std::optional<Filter>& filter,
                                               const std::vector<PointId>& ids) {
  if (!filter || ids.empty()) return ids;
  std::unordered_set<PointId, PointIdHash> pass;
  for (size_t start = 0; start < ids.size(); start += kMaxSearchLimit) {
    const size_t end = std::min(ids.size(), start + kMaxSearchLimit);
    std::vector<PointId> chunk(ids.begin() + start, ids.begin() + end);
    ScrollRequest s;
    s.limit = chunk.size();
    s.with_payload = false;
    s.filter = Restrict(filter, &chunk, {});
    QVEC_ASSIGN_OR_RETURN(auto page, c_.Scroll(s));
    for (const Record& rec : page.points) pass.insert(rec.id);
  }
  std::vector<PointId> out;
  for (const PointId& id : ids) {
    if (pass.count(id)) out.push_back(id);
  }
  return out;
}

StatusOr<std::vector<PointId>> Runner::Candidates(const QueryRequest& r,
                                                  const std::vector<Hits>& pre,
                                                  const std::vector<QueryVector>& examples,
                                                  size_t want,
                                                  const std::vector<PointId>& exclude) {
  std::vector<PointId> out;
  if (!r.prefetch.empty()) {
    out = Union(pre);
  } else {
    QVEC_ASSIGN_OR_RETURN(size_t n, c_.Count(nullptr));
    if (n <= kExhaustiveQueryPoints) {
      ScrollRequest s;
      s.limit = std::max<size_t>(n, 1);
      s.with_payload = false;
      s.filter = r.filter;
      QVEC_ASSIGN_OR_RETURN(auto page, c_.Scroll(s));
      for (const Record& rec : page.points) out.push_back(rec.id);
    } else {
      const size_t per = std::min(kMaxSearchLimit, std::max<size_t>(8 * want, 256));
      std::vector<Hits> lists;
      QueryRequest plain = r;
      plain.score_threshold.reset();
      for (const auto& v : examples) {
        QVEC_ASSIGN_OR_RETURN(Hits h, Nearest(plain, v, per, nullptr, exclude, std::nullopt));
        lists.push_back(std::move(h));
      }
      out = Union(lists);
    }
  }
  if (!exclude.empty()) {
    std::unordered_set<PointId, PointIdHash> ex(exclude.begin(), exclude.end());
    std::erase_if(out, [&](const PointId& id) { return ex.count(id) > 0; });
  }
  return out;
}

std::vector<PointId> Runner::ExampleIds(const QuerySpec& q) {
  std::vector<PointId> out;
  auto add = [&](const VectorInput& in) {
    if (in.point) out.push_back(*in.point);
  };
  if (q.kind == QuerySpec::Kind::kNearest) add(q.nearest);
  for (const auto& in : q.positive) add(in);
  for (const auto& in : q.negative) add(in);
  if (q.kind == QuerySpec::Kind::kDiscover) add(q.target);
  for (const auto& [p, n] : q.context) {
    add(p);
    add(n);
  }
  return out;
}

StatusOr<Hits> Runner::CustomObjective(const QueryRequest& r, const std::vector<Hits>& pre,
                                       size_t want, const std::vector<PointId>& exclude) {
  const QuerySpec& q = *r.query;
  QVEC_ASSIGN_OR_RETURN(const Distance metric, FieldDistance(r.vector_name));
  auto sim = [&](float score) { return RawSimilarity(metric, score); };
  std::vector<PointId> examples;
  std::vector<QueryVector> pos, neg, all;
  std::vector<std::pair<QueryVector, QueryVector>> pairs;
  std::optional<QueryVector> target;
  for (const VectorInput& in : q.positive) {
    QVEC_ASSIGN_OR_RETURN(auto v, Resolve(r.vector_name, in, &examples));
    pos.push_back(std::move(v));
  }
  for (const VectorInput& in : q.negative) {
    QVEC_ASSIGN_OR_RETURN(auto v, Resolve(r.vector_name, in, &examples));
    neg.push_back(std::move(v));
  }
  for (const auto& [p, n] : q.context) {
    QVEC_ASSIGN_OR_RETURN(auto pv, Resolve(r.vector_name, p, &examples));
    QVEC_ASSIGN_OR_RETURN(auto nv, Resolve(r.vector_name, n, &examples));
    pairs.emplace_back(std::move(pv), std::move(nv));
  }
  std::vector<float> pair_weights;  // relevance feedback: per pair
  if (q.kind == QuerySpec::Kind::kRelevanceFeedback) {
    // Examples are not excluded: `examples` is not passed.
    std::vector<std::pair<float, QueryVector>> fb;
    for (const auto& item : q.feedback) {
      QVEC_ASSIGN_OR_RETURN(auto v, Resolve(r.vector_name, item.example, nullptr));
      fb.emplace_back(item.score, std::move(v));
    }
    std::stable_sort(fb.begin(), fb.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    const size_t n_pairs = std::min<size_t>(3, fb.size() / 2);
    for (size_t i = 0; i < n_pairs; ++i) {
      const auto& front = fb[i];
      const auto& back = fb[fb.size() - 1 - i];
      const float confidence = front.first - back.first;
      pair_weights.push_back(std::pow(confidence, q.feedback_b) * q.feedback_c);
      pairs.emplace_back(front.second, back.second);
    }
    QVEC_ASSIGN_OR_RETURN(auto t, Resolve(r.vector_name, q.target, nullptr));
    target = std::move(t);
  }
  if (q.kind == QuerySpec::Kind::kDiscover) {
    QVEC_ASSIGN_OR_RETURN(auto t, Resolve(r.vector_name, q.target, &examples));
    target = std::move(t);
  }
  for (const auto& v : pos) all.push_back(v);
  if (target) all.push_back(*target);
  for (const auto& [p, n] : pairs) all.push_back(p);
  if (all.empty()) all = neg;  // only negatives: their neighbourhood is what ranks lowest

  QVEC_ASSIGN_OR_RETURN(std::vector<PointId> ids, Candidates(r, pre, all, want, exclude));
  auto scores_of = [&](const QueryVector& v) { return Scores(r, v, ids); };
  std::vector<ScoreMap> pos_s, neg_s;
  for (const auto& v : pos) {
    QVEC_ASSIGN_OR_RETURN(auto m, scores_of(v));
    pos_s.push_back(std::move(m));
  }
  for (const auto& v : neg) {
    QVEC_ASSIGN_OR_RETURN(auto m, scores_of(v));
    neg_s.push_back(std::move(m));
  }
  std::vector<std::pair<ScoreMap, ScoreMap>> pair_s;
  for (const auto& [p, n] : pairs) {
    QVEC_ASSIGN_OR_RETURN(auto pm, scores_of(p));
    QVEC_ASSIGN_OR_RETURN(auto nm, scores_of(n));
    pair_s.emplace_back(std::move(pm), std::move(nm));
  }
  ScoreMap target_s;
  if (target) {
    QVEC_ASSIGN_OR_RETURN(target_s, scores_of(*target));
  }

  Hits out;
  for (const PointId& id : ids) {
    // Points filtered out by the stage's filter have no scores.
    const ScoreMap& any = !pos_s.empty()   ? pos_s[0]
                          : !neg_s.empty() ? neg_s[0]
                          : target         ? target_s
                                           : pair_s[0].first;
    auto it = any.find(id);
    if (it == any.end()) continue;
    float score = 0;
    switch (q.kind) {
      case QuerySpec::Kind::kRecommend:
        if (q.strategy == QuerySpec::Strategy::kSumScores) {
          for (const auto& m : pos_s) score += sim(m.at(id));
          for (const auto& m : neg_s) score -= sim(m.at(id));
        } else {  // best_score
          float best_pos = -INFINITY, best_neg = -INFINITY;
          for (const auto& m : pos_s) best_pos = std::max(best_pos, sim(m.at(id)));
          for (const auto& m : neg_s) best_neg = std::max(best_neg, sim(m.at(id)));
          score = best_pos > best_neg ? ScaledFastSigmoid(best_pos) : -ScaledFastSigmoid(best_neg);
        }
        break;
      case QuerySpec::Kind::kDiscover: {
        int rank = 0;
        for (const auto& [pm, nm] : pair_s) {
          const float p = sim(pm.at(id)), n = sim(nm.at(id));
          rank += p > n ? 1 : (p < n ? -1 : 0);
        }
        score = static_cast<float>(rank) + ScaledFastSigmoid(sim(target_s.at(id)));
        break;
      }
      case QuerySpec::Kind::kRelevanceFeedback: {
        score = q.feedback_a * sim(target_s.at(id));
        for (size_t i = 0; i < pair_s.size(); ++i) {
          score += pair_weights[i] * (sim(pair_s[i].first.at(id)) - sim(pair_s[i].second.at(id)));
        }
        break;
      }
      case QuerySpec::Kind::kContext: {
        for (const auto& [pm, nm] : pair_s) {
          const float diff = sim(pm.at(id)) - sim(nm.at(id)) - FLT_EPSILON;
          score += FastSigmoid(std::min(diff, 0.0f));
        }
        break;
      }
      default:
        return InternalError("not a custom objective");
    }
    out.push_back({id, score});
  }
  SortBest(&out, false);
  if (r.score_threshold) {  // strict, as Qdrant's searches
    std::erase_if(out, [&](const Hit& h) { return !(h.score > *r.score_threshold); });
  }
  if (out.size() > want) out.resize(want);
  return out;
}

StatusOr<Hits> Runner::Fuse(const QueryRequest& r, const std::vector<Hits>& pre, size_t want) {
  const QuerySpec& q = *r.query;
  if (pre.empty()) {
    return InvalidArgumentError(
        "query.fusion: fusion combines the results of prefetch queries; "
        "give at least one prefetch");
  }
  ScoreMap fused;
  std::vector<PointId> order;  // first appearance, for equal scores
  auto add = [&](const PointId& id, float s) {
    auto [it, fresh] = fused.emplace(id, 0.0f);
    if (fresh) order.push_back(id);
    it->second += s;
  };
  for (size_t i = 0; i < pre.size(); ++i) {
    const Hits& list = pre[i];
    const float weight = i < q.rrf_weights.size() ? q.rrf_weights[i] : 1.0f;
    if (q.fusion == QuerySpec::Fusion::kRrf) {
      for (size_t pos = 0; pos < list.size(); ++pos) {
        add(list[pos].id, weight / static_cast<float>(q.rrf_k + pos));
      }
      continue;
    }
    // DBSF: each list's scores mapped by mean +- 3 sample standard
    // deviations (not clipped; 0.5 for a single score or no spread), summed.
    // Distances are negated first, so that larger is better in every list
    // (Qdrant itself reverses such lists: qdrant/qdrant#10611).
    if (list.empty()) continue;
    const bool lower = LowerFirst(r.prefetch[i]);
    std::vector<double> s;
    for (const Hit& h : list) s.push_back(lower ? -double{h.score} : double{h.score});
    const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
    double var = 0;
    for (double x : s) var += (x - mean) * (x - mean);
    const double sd = s.size() > 1 ? std::sqrt(var / static_cast<double>(s.size() - 1)) : 0.0;
    const double lo = mean - 3 * sd, hi = mean + 3 * sd;
    for (size_t j = 0; j < list.size(); ++j) {
      const double norm = hi > lo ? (s[j] - lo) / (hi - lo) : 0.5;
      add(list[j].id, static_cast<float>(norm));
    }
  }
  std::vector<PointId> ids = order;
  QVEC_ASSIGN_OR_RETURN(ids, Passing(r.filter, ids));
  Hits out;
  for (const PointId& id : ids) out.push_back({id, fused.at(id)});
  SortBest(&out, false);
  if (r.score_threshold) {  // fused scores: inclusive
    std::erase_if(out, [&](const Hit& h) { return h.score < *r.score_threshold; });
  }
  if (out.size() > want) out.resize(want);
  return out;
}

StatusOr<Hits> Runner::OrderBy(const QueryRequest& r, const std::vector<Hits>& pre, bool prefetched,
                               size_t want) {
  ScrollRequest s;
  s.order_by = r.query->order_by;
  s.with_payload = false;
  s.limit = std::max<size_t>(want, 1);
  std::vector<PointId> ids;
  if (prefetched) {
    ids = Union(pre);
    if (ids.empty()) return Hits{};
    if (ids.size() > 100000) ids.resize(100000);
    s.filter = Restrict(r.filter, &ids, {});
  } else {
    s.filter = r.filter;
  }
  QVEC_ASSIGN_OR_RETURN(auto page, c_.Scroll(s));
  Hits out;
  // As Qdrant: once per value a point holds at the key; score 0.
  for (const Record& rec : page.points) out.push_back({rec.id, 0.0f, rec.order_value});
  if (out.size() > want) out.resize(want);
  return out;
}

StatusOr<Hits> Runner::Sample(const QueryRequest& r, const std::vector<Hits>& pre, bool prefetched,
                              size_t want) {
  std::vector<PointId> ids;
  if (prefetched) {
    QVEC_ASSIGN_OR_RETURN(ids, Passing(r.filter, Union(pre)));
  } else {
    // Every passing id (without payloads), page by page.
    ScrollRequest s;
    s.limit = 100000;
    s.with_payload = false;
    s.filter = r.filter;
    for (;;) {
      QVEC_ASSIGN_OR_RETURN(auto page, c_.Scroll(s));
      for (const Record& rec : page.points) ids.push_back(rec.id);
      if (!page.next_page_offset) break;
      s.offset = page.next_page_offset;
    }
  }
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  const size_t n = std::min(want, ids.size());
  for (size_t i = 0; i < n; ++i) std::swap(ids[i], ids[i + rng() % (ids.size() - i)]);
  Hits out;
  for (size_t i = 0; i < n; ++i) out.push_back({ids[i], 0.0f});
  return out;
}

StatusOr<Hits> Runner::Formula(const QueryRequest& r, const std::vector<Hits>& pre, size_t want) {
  if (pre.empty()) {
    return InvalidArgumentError(
        "query.formula: a formula re-scores the points of prefetch queries; give at least one "
        "prefetch");
  }
  std::vector<ScoreMap> scores(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) {
    for (const Hit& h : pre[i]) scores[i].emplace(h.id, h.score);
  }
  FormulaEvaluator eval(*r.query, scores);
  QVEC_RETURN_IF_ERROR(eval.Prepare());
  QVEC_ASSIGN_OR_RETURN(std::vector<PointId> ids, Passing(r.filter, Union(pre)));
  // Each condition decided for all the points at once.
  std::vector<std::unordered_set<PointId, PointIdHash>> passing;
  for (const Filter* c : eval.conditions()) {
    QVEC_ASSIGN_OR_RETURN(std::vector<PointId> pass, Passing(*c, ids));
    passing.emplace_back(pass.begin(), pass.end());
  }
  std::unordered_map<PointId, std::string, PointIdHash> payloads;
  if (eval.NeedsPayload()) {
    for (size_t start = 0; start < ids.size(); start += kMaxSearchLimit) {
      const size_t end = std::min(ids.size(), start + kMaxSearchLimit);
      std::vector<PointId> chunk(ids.begin() + start, ids.begin() + end);
      QVEC_ASSIGN_OR_RETURN(auto records, c_.Get(chunk, true, false, 0));
      for (Record& rec : records) payloads[rec.id] = rec.payload.value_or("{}");
    }
  }
  Hits out;
  std::vector<bool> passes(passing.size());
  for (const PointId& id : ids) {
    for (size_t i = 0; i < passing.size(); ++i) passes[i] = passing[i].count(id) > 0;
    auto p = payloads.find(id);
    QVEC_ASSIGN_OR_RETURN(double score,
                          eval.Evaluate(id, p == payloads.end() ? std::string_view("{}")
                                                                : std::string_view(p->second),
                                        passes));
    if (!std::isfinite(score)) {
      return InvalidArgumentError("query.formula: the score of point " + id.ToString() +
                                  " is not a finite number");
    }
    out.push_back({id, static_cast<float>(score)});
  }
  SortBest(&out, false);
  if (r.score_threshold) {
    std::erase_if(out, [&](const Hit& h) { return h.score < *r.score_threshold; });
  }
  if (out.size() > want) out.resize(want);
  return out;
}

StatusOr<Hits> Runner::Stage(const QueryRequest& stage, size_t want,
                             const std::optional<Filter>& inherited,
                             const std::vector<PointId>& outer_exclude, int depth) {
  if (depth > 64) return InvalidArgumentError("prefetch: nested more than 64 levels deep");
  if (stage.limit == 0 || stage.limit > kMaxSearchLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  // The stage with the outer filters merged in; its examples (and the outer
  // ones) never appear in its results or its prefetches'.
  QueryRequest r = stage;
  r.filter = And(stage.filter, inherited);
  std::vector<PointId> exclude = outer_exclude;
  if (r.query) {
    for (const PointId& id : ExampleIds(*r.query)) exclude.push_back(id);
  }
  if (!r.prefetch.empty() && !r.query) {
    return InvalidArgumentError(
        "query: a query is needed to merge the prefetches (e.g. {\"fusion\": \"rrf\"})");
  }
  if (r.query && r.score_threshold && r.query->kind == QuerySpec::Kind::kOrderBy) {
    return InvalidArgumentError("score_threshold: not with an order_by query");
  }
  std::vector<Hits> pre;
  for (const QueryRequest& p : r.prefetch) {
    QVEC_ASSIGN_OR_RETURN(Hits h, Stage(p, p.limit, r.filter, exclude, depth + 1));
    pre.push_back(std::move(h));
  }
  const bool prefetched = !r.prefetch.empty();
  if (!r.query) {
    // No query at all: points by id, as a scroll.
    ScrollRequest s;
    s.limit = want;
    s.with_payload = false;
    s.filter = r.filter;
    QVEC_ASSIGN_OR_RETURN(auto page, c_.Scroll(s));
    Hits h;
    for (const Record& rec : page.points) h.push_back({rec.id, 0.0f});
    return h;
  }
  const QuerySpec& q = *r.query;
  std::vector<PointId> ids;
  if (prefetched) ids = Union(pre);
  switch (q.kind) {
    case QuerySpec::Kind::kNearest: {
      if (!IsSparse(r.vector_name)) QVEC_RETURN_IF_ERROR(Field(r.vector_name).status());
      if (q.mmr && IsSparse(r.vector_name)) {
        return InvalidArgumentError("query.nearest.mmr: not supported on the sparse vector field '" +
                                    r.vector_name + "'");
      }
      QVEC_ASSIGN_OR_RETURN(auto v, Resolve(r.vector_name, q.nearest, nullptr));
      return Nearest(r, v, want, prefetched ? &ids : nullptr, exclude, q.mmr);
    }
    case QuerySpec::Kind::kRecommend: {
      QVEC_ASSIGN_OR_RETURN(const Distance distance, FieldDistance(r.vector_name));
      if (q.positive.empty() && q.negative.empty()) {
        return InvalidArgumentError(
            "query.recommend: give at least one positive or negative example");
      }
      const bool linear = q.strategy == QuerySpec::Strategy::kAverageVector ||
                          (q.strategy == QuerySpec::Strategy::kSumScores && !LowerIsBetter(distance));
      if (!linear) return CustomObjective(r, pre, want, exclude);
      if (q.strategy == QuerySpec::Strategy::kAverageVector && q.positive.empty()) {
        return InvalidArgumentError(
            "query.recommend.positive: the average_vector strategy needs a positive example "
            "(best_score and sum_scores work with negatives only)");
      }
      if (IsSparse(r.vector_name)) {
        // Dot products are linear in the query: one search by the combined
        // sparse vector (average_vector: 2 avg(pos) - avg(neg); sum_scores:
        // sum(pos) - sum(neg)).
        const bool sum_scores = q.strategy == QuerySpec::Strategy::kSumScores;
        std::map<uint32_t, double> combined;
        auto add = [&](const VectorInput& in, double w) -> Status {
          QVEC_ASSIGN_OR_RETURN(QueryVector v, Resolve(r.vector_name, in, nullptr));
          for (size_t i = 0; i < v.sparse->indices.size(); ++i) {
            combined[v.sparse->indices[i]] += w * v.sparse->values[i];
          }
          return Status::Ok();
        };
        const double np = static_cast<double>(q.positive.size());
        const double nn = static_cast<double>(q.negative.size());
        const double wp = sum_scores ? 1.0 : (q.negative.empty() ? 1.0 : 2.0) / np;
        const double wn = sum_scores ? -1.0 : -1.0 / std::max(nn, 1.0);
        for (const auto& in : q.positive) QVEC_RETURN_IF_ERROR(add(in, wp));
        for (const auto& in : q.negative) QVEC_RETURN_IF_ERROR(add(in, wn));
        QueryVector v{{}, SparseVector{}};
        for (const auto& [dim, x] : combined) {
          if (x == 0) continue;
          v.sparse->indices.push_back(dim);
          v.sparse->values.push_back(static_cast<float>(x));
        }
        return Nearest(r, v, want, prefetched ? &ids : nullptr, exclude, std::nullopt);
      }
      QVEC_ASSIGN_OR_RETURN(const VectorFieldConfig* field, Field(r.vector_name));
      // One vector: average_vector's avg(pos) + avg(pos) - avg(neg) (avg(pos)
      // without negatives); sum_scores on Cosine/Dot is linear in the point,
      // so it is the search by sum(pos) - sum(neg) of the (normalized)
      // examples.
      const size_t dim = field->dimension;
      std::vector<double> sum_pos(dim, 0), sum_neg(dim, 0);
      const bool cosine = field->distance == Distance::kCosine;
      const bool sum_scores = q.strategy == QuerySpec::Strategy::kSumScores;
      auto accumulate = [&](const VectorInput& in, std::vector<double>* acc) -> Status {
        QVEC_ASSIGN_OR_RETURN(QueryVector resolved, Resolve(r.vector_name, in, nullptr));
        const std::vector<float>& v = resolved.dense;
        if (v.size() != dim) {
          return InvalidArgumentError("query.recommend: an example has " +
                                      std::to_string(v.size()) + " dimensions, the field " +
                                      std::to_string(dim));
        }
        double norm = 1;
        if (cosine && sum_scores) {
          double ss = 0;
          for (float x : v) ss += double{x} * x;
          norm = ss > 0 ? std::sqrt(ss) : 1;
        }
        for (size_t i = 0; i < dim; ++i) (*acc)[i] += v[i] / norm;
        return Status::Ok();
      };
      for (const auto& in : q.positive) QVEC_RETURN_IF_ERROR(accumulate(in, &sum_pos));
      for (const auto& in : q.negative) QVEC_RETURN_IF_ERROR(accumulate(in, &sum_neg));
      std::vector<float> v(dim);
      double ss = 0;
      for (size_t i = 0; i < dim; ++i) {
        if (sum_scores) {
          v[i] = static_cast<float>(sum_pos[i] - sum_neg[i]);
        } else {
          const double ap = sum_pos[i] / static_cast<double>(q.positive.size());
          const double an =
              q.negative.empty() ? 0 : sum_neg[i] / static_cast<double>(q.negative.size());
          v[i] = static_cast<float>(q.negative.empty() ? ap : ap + ap - an);
        }
        ss += double{v[i]} * v[i];
      }
      if (cosine && ss == 0) {
        return InvalidArgumentError("query.recommend: the examples cancel out (zero vector)");
      }
      // sum_scores on Cosine: the search scores cos(x, sum) = <x, sum> / |sum|,
      // the threshold and the answer are in units of the sum of similarities.
      const float scale = (sum_scores && cosine) ? static_cast<float>(std::sqrt(ss)) : 1.0f;
      QueryRequest scaled = r;
      if (scaled.score_threshold) *scaled.score_threshold /= scale;
      QVEC_ASSIGN_OR_RETURN(Hits hits, Nearest(scaled, QueryVector{v, std::nullopt}, want,
                                               prefetched ? &ids : nullptr, exclude, std::nullopt));
      for (Hit& h : hits) h.score *= scale;
      return hits;
    }
    case QuerySpec::Kind::kRelevanceFeedback:
      QVEC_RETURN_IF_ERROR(FieldDistance(r.vector_name).status());
      if (!(q.feedback_b >= 0) || !std::isfinite(q.feedback_a) || !std::isfinite(q.feedback_b) ||
          !std::isfinite(q.feedback_c)) {
        return InvalidArgumentError(
            "query.relevance_feedback.strategy.naive: a, b, c must be finite and b >= 0");
      }
      return CustomObjective(r, pre, want, exclude);
    case QuerySpec::Kind::kDiscover:
    case QuerySpec::Kind::kContext:
      QVEC_RETURN_IF_ERROR(FieldDistance(r.vector_name).status());
      if (q.context.empty() && q.kind == QuerySpec::Kind::kContext) {
        return InvalidArgumentError("query.context: give at least one pair");
      }
      return CustomObjective(r, pre, want, exclude);
    case QuerySpec::Kind::kFusion:
      return Fuse(r, pre, want);
    case QuerySpec::Kind::kOrderBy:
      return OrderBy(r, pre, prefetched, want);
    case QuerySpec::Kind::kSample:
      return Sample(r, pre, prefetched, want);
    case QuerySpec::Kind::kFormula:
      return Formula(r, pre, want);
  }
  return InternalError("unknown query kind");
}

}  // namespace

StatusOr<std::vector<ScoredPoint>> RunQuery(Collection& collection, const QueryRequest& request) {
  if (request.offset > kMaxSearchOffset) {
    return OutOfRangeError("offset must be at most " + std::to_string(kMaxSearchOffset));
  }
  Runner runner(collection);
  const size_t want = request.limit + request.offset;
  QVEC_ASSIGN_OR_RETURN(Hits hits, runner.Stage(request, want, std::nullopt, {}, 0));
  if (hits.size() <= request.offset) return std::vector<ScoredPoint>{};
  hits.erase(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(request.offset));
  if (hits.size() > request.limit) hits.resize(request.limit);
  std::vector<ScoredPoint> out(hits.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    out[i].id = hits[i].id;
    out[i].score = hits[i].score;
    out[i].order_value = hits[i].order_value;
  }
  if (!request.with_payload && !request.with_vector) return out;
  std::vector<PointId> ids;
  for (const Hit& h : hits) ids.push_back(h.id);
  QVEC_ASSIGN_OR_RETURN(auto records, collection.Get(ids, request.with_payload, request.with_vector,
                                                     request.max_result_bytes));
  std::unordered_map<PointId, Record*, PointIdHash> by_id;
  for (Record& rec : records) by_id[rec.id] = &rec;
  for (ScoredPoint& p : out) {
    auto it = by_id.find(p.id);
    if (it == by_id.end()) continue;  // deleted since it was ranked
    Record& rec = *it->second;
    if (request.with_payload) p.payload = rec.payload ? std::move(rec.payload) : std::string("{}");
    p.vector = std::move(rec.vector);
    p.vectors = std::move(rec.vectors);
    p.sparse_vectors = std::move(rec.sparse_vectors);
  }
  return out;
}

namespace {

// Multiplies the limits of every prefetch by `factor` (capped).
void ScalePrefetchLimits(QueryRequest* r, size_t factor) {
  for (QueryRequest& p : r->prefetch) {
    p.limit = std::min(kMaxSearchLimit, p.limit * factor);
    ScalePrefetchLimits(&p, factor);
  }
}

// The group values of a point's payload at `key`: strings and integers,
// deduplicated; empty when any value has another type.
std::vector<MatchValue> GroupValues(const std::string& payload, const std::string& key) {
  std::vector<MatchValue> out;
  const FieldValues fv = ExtractField(payload, key);
  if (!fv.geo.empty() || !fv.objects.empty()) return {};
  for (const PayloadScalar& v : fv.values) {
    MatchValue m;
    if (const auto* s = std::get_if<std::string>(&v)) {
      m = *s;
    } else if (const auto* i = std::get_if<int64_t>(&v)) {
      m = *i;
    } else if (std::holds_alternative<std::monostate>(v)) {
      continue;  // a null in an array names no group
    } else {
      return {};
    }
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<PointGroup>> RunQueryGroups(Collection& collection,
                                                 const QueryRequest& request,
                                                 const GroupBy& group) {
  if (group.key.empty()) return InvalidArgumentError("group_by must not be empty");
  if (group.group_size == 0 || group.group_size > kMaxSearchLimit) {
    return OutOfRangeError("group_size must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  if (group.limit == 0 || group.limit > kMaxSearchLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  // Points without a value at the key are left out by the filter itself.
  QueryRequest r = request;
  Condition empty;
  empty.kind = Condition::Kind::kIsEmpty;
  empty.key = group.key;
  Filter has_key;
  has_key.must_not.push_back(std::move(empty));
  r.filter = And(r.filter, has_key);
  r.offset = 0;
  r.with_payload = false;
  r.with_vector = VectorSelector(false);
  ScalePrefetchLimits(&r, group.group_size);
  // Ask for more points until the groups are full or the query runs dry.
  size_t fetch = std::min(kMaxSearchLimit, group.limit * group.group_size * 2);
  std::vector<PointGroup> groups;
  for (;;) {
    r.limit = fetch;
    QVEC_ASSIGN_OR_RETURN(auto hits, RunQuery(collection, r));
    std::vector<PointId> ids;
    for (const auto& h : hits) ids.push_back(h.id);
    QVEC_ASSIGN_OR_RETURN(auto records, collection.Get(ids, true, VectorSelector(false), 0));
    std::unordered_map<PointId, const Record*, PointIdHash> by_id;
    for (const Record& rec : records) by_id[rec.id] = &rec;
    groups.clear();
    for (const ScoredPoint& h : hits) {
      auto it = by_id.find(h.id);
      if (it == by_id.end() || !it->second->payload) continue;
      for (MatchValue& v : GroupValues(*it->second->payload, group.key)) {
        auto g = std::find_if(groups.begin(), groups.end(),
                              [&](const PointGroup& pg) { return pg.id == v; });
        if (g == groups.end()) {
          if (groups.size() == group.limit) continue;
          groups.push_back(PointGroup{std::move(v), {}});
          g = groups.end() - 1;
        }
        if (g->hits.size() < group.group_size) g->hits.push_back(h);
      }
    }
    bool full = groups.size() == group.limit;
    for (const PointGroup& g : groups) full = full && g.hits.size() == group.group_size;
    if (full || hits.size() < fetch || fetch == kMaxSearchLimit) break;
    fetch = std::min(kMaxSearchLimit, fetch * 4);
  }
  // The hits' payloads and vectors as asked.
  if (request.with_payload || request.with_vector) {
    std::vector<PointId> ids;
    for (const PointGroup& g : groups) {
      for (const ScoredPoint& h : g.hits) ids.push_back(h.id);
    }
    QVEC_ASSIGN_OR_RETURN(
        auto records,
        collection.Get(ids, request.with_payload, request.with_vector, request.max_result_bytes));
    std::unordered_map<PointId, Record*, PointIdHash> by_id;
    for (Record& rec : records) by_id[rec.id] = &rec;
    for (PointGroup& g : groups) {
      for (ScoredPoint& h : g.hits) {
        auto it = by_id.find(h.id);
        if (it == by_id.end()) continue;
        if (request.with_payload) h.payload = it->second->payload.value_or("{}");
        if (it->second->vector) h.vector = it->second->vector;
        h.vectors = it->second->vectors;
        h.sparse_vectors = it->second->sparse_vectors;
      }
    }
  }
  return groups;
}

}  // namespace qvec::engine
