#include "common/json.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("ParseJson names what failed and where") {
  auto r = ParseJson("{\"a\": 1,", "request body");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().message().find("request body: invalid JSON at byte") == 0);
  CHECK(ParseJson("[1,2]").ok());
}

TEST_CASE("JsonField names missing and mistyped fields") {
  Json j = {{"name", "web01"}, {"count", 3}};
  CHECK(*JsonField<std::string>(j, "name") == "web01");
  CHECK(JsonField<std::string>(j, "mac").status().message() == "missing field \"mac\"");
  CHECK(JsonField<std::string>(j, "count").status().message() ==
        "field \"count\" has the wrong type (number)");
  CHECK(*JsonFieldOr<int>(j, "absent", 7) == 7);
  CHECK_FALSE(JsonFieldOr<int>(j, "name", 7).ok());
  CHECK_FALSE(JsonField<int>(Json::array(), "x").ok());
}

TEST_CASE("error bodies round-trip through ErrorJson") {
  Status s(Code::kBadVersion, "/kiln/x: expected version 3, found 4");
  CHECK(StatusFromErrorJson(ErrorJson(s).dump(), 409) == s);
  Status plain = StatusFromErrorJson("<html>gateway</html>", 502);
  CHECK(plain.code() == Code::kUnavailable);
  CHECK(plain.message() == "HTTP 502: <html>gateway</html>");
  CHECK(StatusFromErrorJson("", 404).code() == Code::kNotFound);
}
