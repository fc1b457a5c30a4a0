#include "common/url.h"

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

TEST(ParseUrlTest, AcceptsServerBaseUrls) {
  auto u = ParseUrl("http://127.0.0.1:8000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8000);
  EXPECT_EQ(u->base_path, "");
  u = ParseUrl("https://tts.example/api/");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls());
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->base_path, "/api");
  u = ParseUrl("http://[::1]:9000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
}

TEST(ParseUrlTest, GrpcUrlsForRivaDefaultToItsPorts) {
  auto u = ParseUrl("grpc://riva.local");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->grpc());
  EXPECT_FALSE(u->tls());
  EXPECT_EQ(u->port, 50051);  // Riva's default
  u = ParseUrl("grpcs://grpc.nvcf.nvidia.com");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->grpc());
  EXPECT_TRUE(u->tls());
  EXPECT_EQ(u->port, 443);
  EXPECT_FALSE(ParseUrl("http://h:1")->grpc());
}

TEST(ParseUrlTest, RejectsBadUrlsWithTheReason) {
  for (const char* bad : {"localhost:8000", "ftp://x", "http://:80", "http://h:99999",
                          "http://h:abc", "not a url", "http://h/?q=1"}) {
    auto u = ParseUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_NE(u.status().message().find("invalid URL"), std::string::npos) << bad;
    }
  }
}

TEST(ParseUrlTest, AUrlWithoutSchemeNamesTheFix) {
  auto u = ParseUrl("127.0.0.1:8000");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(),
            "invalid URL '127.0.0.1:8000': no scheme; write http://127.0.0.1:8000 (or "
            "https://127.0.0.1:8000)");
}

TEST(ValidateHostPortTest, NeedsNumericPort) {
  EXPECT_TRUE(ValidateHostPort("127.0.0.1:0").ok());
  EXPECT_FALSE(ValidateHostPort("127.0.0.1").ok());
  EXPECT_FALSE(ValidateHostPort("host:x").ok());
}

}  // namespace
}  // namespace ttsbench::common
