// Query formulas (Qdrant's score boosting) against values computed here:
// every operation, variables and defaults, conditions, prefetch scores and
// the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;
using K = Expression::Kind;

Expression Num(double v) {
  Expression e;
  e.kind = K::kConstant;
  e.constant = v;
  return e;
}
Expression Var(std::string name) {
  Expression e;
  e.kind = K::kVariable;
  e.name = std::move(name);
  return e;
}
Expression Op(K kind, std::vector<Expression> args) {
  Expression e;
  e.kind = kind;
  e.args = std::move(args);
  return e;
}
Expression TagIs(const std::string& tag) {
  Condition c;
  c.key = "tag";
  c.value = tag;
  auto f = std::make_shared<Filter>();
  f->must.push_back(c);
  Expression e;
  e.kind = K::kCondition;
  e.condition = f;
  return e;
}

class FormulaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::Open(DatabaseOptions(), dir_.path());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    CollectionConfig cfg;
    cfg.dimension = 2;
    cfg.distance = Distance::kDot;
    ASSERT_TRUE(db_->CreateCollection("c", cfg).ok());
    c_ = *db_->GetCollection("c");
    std::vector<Point> points(4);
    const char* payloads[] = {
        R"({"pop":10,"tag":"a","loc":{"lat":52.52,"lon":13.405},"t":"2025-01-01T00:00:00Z"})",
        R"({"pop":[100],"tag":"b","loc":{"lat":48.137,"lon":11.575},"t":"2025-01-02T12:00:00Z"})",
        R"({"pop":"many","tag":"a"})",
        R"({"tag":["a","b"],"pop":[1,2]})",
    };
    for (size_t i = 0; i < 4; ++i) {
      points[i].id = PointId::Num(i + 1);
      points[i].vector = {1.0f - 0.1f * static_cast<float>(i), 0.0f};
      points[i].payload = payloads[i];
    }
    ASSERT_TRUE(c_->Upsert(points).ok());
  }

  // Scores by id of `formula` over the nearest points to [1, 0] (score =
  // 1 - 0.1 * (id - 1)); `ids` restricts the prefetch.
  StatusOr<std::map<uint64_t, float>> Run(Expression formula,
                                          std::map<std::string, std::string> defaults = {},
                                          std::vector<uint64_t> ids = {1, 2, 3, 4},
                                          bool second_prefetch = false) {
    QueryRequest q;
    QueryRequest pre;
    pre.query.emplace();
    pre.query->nearest.vector = {1, 0};
    pre.limit = 10;
    Filter only;
    Condition has;
    has.kind = Condition::Kind::kHasId;
    for (uint64_t id : ids) has.ids.push_back(PointId::Num(id));
    only.must.push_back(has);
    pre.filter = only;
    q.prefetch.push_back(pre);
    if (second_prefetch) {
      QueryRequest other = pre;
      other.query->nearest.vector = {2, 0};
      other.filter.reset();
      other.limit = 2;  // ids 1 and 2, scores 2 and 1.8
      q.prefetch.push_back(other);
    }
    q.query.emplace();
    q.query->kind = QuerySpec::Kind::kFormula;
    q.query->formula = std::move(formula);
    q.query->formula_defaults = std::move(defaults);
    q.limit = 10;
    QVEC_ASSIGN_OR_RETURN(auto hits, c_->Query(q));
    std::map<uint64_t, float> out;
    for (const ScoredPoint& p : hits) out[p.id.num()] = p.score;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> c_;
};

TEST_F(FormulaTest, ArithmeticOnScoresAndPayloadNumbers) {
  // $score + 0.5 * [tag == a]
  auto r = Run(Op(K::kSum, {Var("$score"), Op(K::kMult, {Num(0.5), TagIs("a")})}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), 1.5f);
  EXPECT_FLOAT_EQ(r->at(2), 0.9f);
  EXPECT_FLOAT_EQ(r->at(3), 1.3f);
  EXPECT_FLOAT_EQ(r->at(4), 1.2f);  // an array holding "a" matches
  // $score * ln(pop + 1), a one-element array counting as its element.
  r = Run(Op(K::kMult, {Var("$score"), Op(K::kLn, {Op(K::kSum, {Var("pop"), Num(1)})})}), {},
          {1, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), static_cast<float>(std::log(11.0)));
  EXPECT_FLOAT_EQ(r->at(2), static_cast<float>(0.9 * std::log(101.0)));
  // neg, abs, sqrt, pow, exp, log10, div with by_zero_default.
  r = Run(Op(K::kSum, {Op(K::kNeg, {Num(2)}), Op(K::kAbs, {Num(-3)}), Op(K::kSqrt, {Num(16)}),
                       Op(K::kPow, {Num(-2), Num(3)}), Op(K::kExp, {Num(0)}),
                       Op(K::kLog10, {Num(1000)})}),
          {}, {1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), -2 + 3 + 4 - 8 + 1 + 3);
  Expression div = Op(K::kDiv, {Num(1), Op(K::kSum, {Var("$score"), Num(-1)})});
  div.by_zero_default = 7;
  r = Run(div, {}, {1, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), 7.0f);
  EXPECT_NEAR(r->at(2), 1 / (0.9 - 1), 1e-4);
  // 0 / 0 is 0 (left first), without by_zero_default.
  r = Run(Op(K::kDiv, {Num(0), Num(0)}), {}, {1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(1), 0.0f);
}

TEST_F(FormulaTest, DefaultsAndMissingValues) {
  // Point 3's pop is a string, point 4's has two values: neither is a number.
  EXPECT_EQ(Run(Var("pop"), {}, {3}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Var("pop"), {}, {4}).status().code(), StatusCode::kInvalidArgument);
  // A missing key takes its default; without one the query fails.
  EXPECT_EQ(Run(Var("missing"), {}, {1}).status().code(), StatusCode::kInvalidArgument);
  auto r = Run(Var("missing"), {{"missing", "2.5"}}, {1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), 2.5f);
  // $score[1] of a point the second prefetch did not return: its default,
  // else 0.
  r = Run(Var("$score[1]"), {}, {1, 2, 3}, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), 2.0f);
  EXPECT_FLOAT_EQ(r->at(2), 1.8f);
  EXPECT_FLOAT_EQ(r->at(3), 0.0f);
  r = Run(Var("$score[1]"), {{"$score[1]", "-1"}}, {1, 2, 3}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(r->at(3), -1.0f);
  EXPECT_EQ(Run(Var("$score[x]")).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FormulaTest, GeoDatetimeAndDecays) {
  Expression geo;
  geo.kind = K::kGeoDistance;
  geo.origin = GeoPoint{13.405, 52.52};  // Berlin
  geo.name = "loc";
  auto r = Run(geo, {}, {1, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->at(1), 0, 1);
  EXPECT_NEAR(r->at(2), 504000, 3000);  // Munich
  EXPECT_EQ(Run(geo, {}, {3}).status().code(), StatusCode::kInvalidArgument);
  r = Run(geo, {{"loc", R"({"lat":52.52,"lon":13.405})"}}, {3});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->at(3), 0, 1);

  Expression key;
  key.kind = K::kDatetimeKey;
  key.name = "t";
  Expression at;
  at.kind = K::kDatetime;
  at.name = "2025-01-02T00:00:00Z";
  r = Run(Op(K::kSum, {key, Op(K::kNeg, {at})}), {}, {1, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FLOAT_EQ(r->at(1), -86400.0f);
  EXPECT_FLOAT_EQ(r->at(2), 43200.0f);

  // Decays of |x - target| = 1 with scale 2, midpoint 0.25.
  for (K kind : {K::kLinDecay, K::kExpDecay, K::kGaussDecay}) {
    Expression d = Op(kind, {Num(3), Num(2)});
    d.scale = 2;
    d.midpoint = 0.25;
    r = Run(d, {}, {1});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const double want = kind == K::kLinDecay   ? 1 - 0.75 / 2
                        : kind == K::kExpDecay ? std::exp(std::log(0.25) / 2)
                                               : std::exp(std::log(0.25) / 4);
    EXPECT_NEAR(r->at(1), want, 1e-6);
    // At |x - target| = scale a decay is its midpoint.
    d.args[0] = Num(4);
    r = Run(d, {}, {1});
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(r->at(1), 0.25, 1e-6);
  }
  Expression bad = Op(K::kLinDecay, {Num(1)});
  bad.midpoint = 1.5;
  EXPECT_EQ(Run(bad).status().code(), StatusCode::kInvalidArgument);
  bad.midpoint.reset();
  bad.scale = 0;
  EXPECT_EQ(Run(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FormulaTest, ShortCircuitsKeepConditionsAligned) {
  // sum(mult(0, [tag == a]), [tag == b]): the product stops at 0 without
  // reading its condition; the later one must still be [tag == b].
  auto r = Run(Op(K::kSum, {Op(K::kMult, {Num(0), TagIs("a")}), TagIs("b")}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at(1), 0.0f);
  EXPECT_EQ(r->at(2), 1.0f);
  EXPECT_EQ(r->at(3), 0.0f);
  EXPECT_EQ(r->at(4), 1.0f);
  r = Run(Op(K::kSum, {Op(K::kDiv, {Num(0), TagIs("a")}), TagIs("a")}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at(1), 1.0f);
  EXPECT_EQ(r->at(2), 0.0f);
}

TEST_F(FormulaTest, NonFiniteResultsAndNoPrefetchAreErrors) {
  EXPECT_EQ(Run(Op(K::kSqrt, {Num(-1)})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Op(K::kLn, {Num(0)})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Op(K::kExp, {Num(1e6)})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Op(K::kPow, {Num(-2), Num(0.5)})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Op(K::kDiv, {Num(1), Num(0)})).status().code(), StatusCode::kInvalidArgument);
  QueryRequest q;
  q.query.emplace();
  q.query->kind = QuerySpec::Kind::kFormula;
  q.query->formula = Num(1);
  EXPECT_EQ(c_->Query(q).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qvec
