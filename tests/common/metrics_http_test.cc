#include "common/metrics_http.h"

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace shrink {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

std::shared_ptr<prometheus::Registry> RegistryWithCounter(double value) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("shrink_test_requests_total")
      .Help("Test counter.")
      .Register(*registry)
      .Add({{"kind", "probe"}})
      .Increment(value);
  return registry;
}

TEST(MetricsHttpServerTest, ServesMetricsOnAnyFreePort) {
  MetricsHttpServer server(RegistryWithCounter(42));
  auto port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);
  EXPECT_EQ(server.port(), *port);

  httplib::Client client("127.0.0.1", *port);
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(response->body, HasSubstr("# TYPE shrink_test_requests_total counter"));
  EXPECT_THAT(response->body, HasSubstr("shrink_test_requests_total{kind=\"probe\"} 42"));
}

TEST(MetricsHttpServerTest, ScrapesSeeUpdatesAndHealthzAnswersOk) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& counter = prometheus::BuildCounter()
                      .Name("shrink_test_events_total")
                      .Help("Test counter.")
                      .Register(*registry)
                      .Add({});
  MetricsHttpServer server(registry);
  auto port = server.Start("localhost:0");
  ASSERT_TRUE(port.ok()) << port.status();
  httplib::Client client("localhost", *port);

  auto before = client.Get("/metrics");
  ASSERT_TRUE(before);
  EXPECT_THAT(before->body, HasSubstr("shrink_test_events_total 0"));
  counter.Increment(3);
  auto after = client.Get("/metrics");
  ASSERT_TRUE(after);
  EXPECT_THAT(after->body, HasSubstr("shrink_test_events_total 3"));

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(MetricsHttpServerTest, StopReleasesThePortAndIsIdempotent) {
  MetricsHttpServer server(RegistryWithCounter(1));
  auto port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  server.Stop();
  server.Stop();
  EXPECT_EQ(server.port(), 0);

  httplib::Client client("127.0.0.1", *port);
  client.set_connection_timeout(1, 0);
  EXPECT_FALSE(client.Get("/healthz"));

  // The same object can serve again, on the same port.
  auto again = server.Start("127.0.0.1:" + std::to_string(*port));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *port);
  EXPECT_TRUE(client.Get("/healthz"));
}

TEST(MetricsHttpServerTest, ImmediateStopAfterStartDoesNotHang) {
  for (int i = 0; i < 20; ++i) {
    MetricsHttpServer server(RegistryWithCounter(1));
    ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  }  // destructor stops
}

TEST(MetricsHttpServerTest, StartingTwiceIsRefused) {
  MetricsHttpServer server(RegistryWithCounter(1));
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_EQ(server.Start("127.0.0.1:0").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MetricsHttpServerTest, PortInUseIsUnavailable) {
  MetricsHttpServer first(RegistryWithCounter(1));
  auto port = first.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  MetricsHttpServer second(RegistryWithCounter(2));
  auto taken = second.Start("127.0.0.1:" + std::to_string(*port));
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr(std::to_string(*port)));
}

TEST(MetricsHttpServerTest, MalformedAddressIsInvalidArgument) {
  MetricsHttpServer server(RegistryWithCounter(1));
  auto started = server.Start("no-port-here");
  EXPECT_EQ(started.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(started.status().message()), HasSubstr("no-port-here"));
}

TEST(MetricsHttpServerTest, UnresolvableHostIsUnavailable) {
  MetricsHttpServer server(RegistryWithCounter(1));
  auto started = server.Start("host.invalid:0");
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable);
}

TEST(SplitHostPortTest, AcceptsHostsAndBracketedIpv6) {
  EXPECT_THAT(*SplitHostPort("localhost:9090"), Pair("localhost", 9090));
  EXPECT_THAT(*SplitHostPort("127.0.0.1:0"), Pair("127.0.0.1", 0));
  EXPECT_THAT(*SplitHostPort("0.0.0.0:65535"), Pair("0.0.0.0", 65535));
  EXPECT_THAT(*SplitHostPort("[::1]:8080"), Pair("::1", 8080));
  EXPECT_THAT(*SplitHostPort("[::]:1"), Pair("::", 1));
  EXPECT_THAT(*SplitHostPort(":9100"), Pair("", 9100));
}

TEST(SplitHostPortTest, RejectsMalformedAddressesNamingThem) {
  for (const char* bad_text :
       {"", "localhost", "localhost:", "localhost:http", "localhost:-1", "localhost:65536",
        "localhost:99999999999", "::1:80", "[::1]", "[::1]80", "[::1:80", "[]:80",
        "host:12ab", "host: 80"}) {
    const std::string bad = bad_text;
    auto split = SplitHostPort(bad);
    ASSERT_FALSE(split.ok()) << bad;
    EXPECT_EQ(split.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(split.status().message()), HasSubstr("\"" + bad + "\"")) << bad;
  }
}

}  // namespace
}  // namespace shrink
