// Aliases through the public API: atomic batches of operations, resolution
// by GetCollection, persistence across a reopen, removal with the
// collection, and the shared namespace with collection names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;
using Aliases = std::vector<std::pair<std::string, std::string>>;

AliasOperation Create(std::string alias, std::string collection) {
  AliasOperation op;
  op.alias = std::move(alias);
  op.collection = std::move(collection);
  return op;
}

AliasOperation Delete(std::string alias) {
  AliasOperation op;
  op.kind = AliasOperation::Kind::kDelete;
  op.alias = std::move(alias);
  return op;
}

AliasOperation Rename(std::string from, std::string to) {
  AliasOperation op;
  op.kind = AliasOperation::Kind::kRename;
  op.alias = std::move(from);
  op.new_alias = std::move(to);
  return op;
}

TEST(AliasTest, AtomicPersistentAndRemovedWithTheCollection) {
  TempDir dir;
  auto open = [&] { return Database::Open(DatabaseOptions{}, dir.Sub("db")).value(); };
  auto db = open();
  CollectionConfig config;
  config.dimension = 2;
  ASSERT_TRUE(db->CreateCollection("a", config).ok());
  ASSERT_TRUE(db->CreateCollection("b", config).ok());
  std::vector<AliasOperation> ops = {Create("x", "a"), Create("y", "a"), Rename("y", "z")};
  ASSERT_TRUE(db->UpdateAliases(ops).ok());
  EXPECT_EQ(db->ListAliases(), (Aliases{{"x", "a"}, {"z", "a"}}));
  EXPECT_EQ((*db->GetCollection("x"))->name(), "a");

  // A batch with one bad operation changes nothing.
  ops = {Delete("x"), Create("x", "b"), Delete("missing")};
  EXPECT_EQ(db->UpdateAliases(ops).code(), StatusCode::kNotFound);
  EXPECT_EQ(db->ListAliases(), (Aliases{{"x", "a"}, {"z", "a"}}));
  ops = {Create("b", "a")};  // a collection's name
  EXPECT_EQ(db->UpdateAliases(ops).code(), StatusCode::kAlreadyExists);
  ops = {Create("w", "z")};  // an alias is not a collection
  EXPECT_EQ(db->UpdateAliases(ops).code(), StatusCode::kNotFound);
  ops = {Create("", "a")};
  EXPECT_EQ(db->UpdateAliases(ops).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(db->CreateCollection("x", config).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(db->DropCollection("x").code(), StatusCode::kInvalidArgument);

  // Switch x to b in one batch; kept across a reopen.
  ops = {Delete("x"), Create("x", "b")};
  ASSERT_TRUE(db->UpdateAliases(ops).ok());
  db.reset();
  db = open();
  EXPECT_EQ(db->ListAliases(), (Aliases{{"x", "b"}, {"z", "a"}}));
  EXPECT_EQ((*db->GetCollection("x"))->name(), "b");

  // Dropping a removes z, on disk too.
  ASSERT_TRUE(db->DropCollection("a").ok());
  EXPECT_EQ(db->ListAliases(), (Aliases{{"x", "b"}}));
  EXPECT_EQ(db->GetCollection("z").status().code(), StatusCode::kNotFound);
  db.reset();
  db = open();
  EXPECT_EQ(db->ListAliases(), (Aliases{{"x", "b"}}));
}

}  // namespace
}  // namespace qvec
