#include "server/http/listen_address.h"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::http;

TEST_CASE("listen addresses parse in all their forms") {
  auto a = ParseListenAddress("127.0.0.1:7070");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 7070);
  CHECK(ParseListenAddress(":80")->host == "0.0.0.0");
  CHECK(ParseListenAddress("8080")->port == 8080);
  auto v6 = ParseListenAddress("[::1]:9");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->ToString() == "[::1]:9");
}

TEST_CASE("bad listen addresses name the problem") {
  CHECK(ParseListenAddress("host:http").status().message() ==
        "bad listen address \"host:http\": the port must be a number from 0 to 65535");
  CHECK_FALSE(ParseListenAddress("1.2.3.4:70000").ok());
  CHECK_FALSE(ParseListenAddress("[::1]").ok());
  auto bad_host = BindSocket({"no.such.host.invalid", 0}, SOCK_STREAM);
  CHECK_FALSE(bad_host.ok());
}
