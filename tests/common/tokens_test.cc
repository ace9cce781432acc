#include "common/tokens.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/files.h"

namespace shrink {
namespace {

TEST(TokensTest, LoadsTokenTenantLinesAndFindsTheTenant) {
  std::string dir = *MakeTempDir("tokens-test-");
  std::ofstream(dir + "/tokens") << "# comment\n\nalice-0123456789abcdef alice\n  bob-0123456789abcdef00\tbob  \n";
  auto table = TokenTable::Load(dir + "/tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  EXPECT_EQ(*table->TenantOf("alice-0123456789abcdef"), "alice");
  EXPECT_EQ(*table->TenantOf("bob-0123456789abcdef00"), "bob");
  EXPECT_TRUE(absl::IsUnauthenticated(table->TenantOf("alice-0123456789abcdeX").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(table->TenantOf("").status()));
  RemoveAll(dir);
}

TEST(TokensTest, BadFilesNameTheLine) {
  std::string dir = *MakeTempDir("tokens-test-");
  auto load = [&](const std::string& text) {
    std::ofstream(dir + "/tokens") << text;
    return TokenTable::Load(dir + "/tokens").status();
  };
  EXPECT_NE(load("ok-0123456789abcdef t\nshort t\n").message().find("tokens:2"), std::string::npos);
  EXPECT_NE(load("only-a-token-0123456789\n").message().find("TOKEN TENANT"), std::string::npos);
  EXPECT_NE(load("ok-0123456789abcdef bad/tenant\n").message().find("tenant"), std::string::npos);
  EXPECT_NE(load("ok-0123456789abcdef a\nok-0123456789abcdef b\n").message().find("twice"), std::string::npos);
  EXPECT_NE(load("# nothing\n").message().find("no tokens"), std::string::npos);
  EXPECT_FALSE(TokenTable::Load(dir + "/missing").ok());
  RemoveAll(dir);
}

TEST(TokensTest, BearerHeaderIsParsed) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
}

}  // namespace
}  // namespace shrink
