#include "common/strings.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("Split keeps empty fields") {
  CHECK(Split("a,b,,c", ',') == std::vector<std::string>{"a", "b", "", "c"});
  CHECK(Split("", ',') == std::vector<std::string>{""});
}

TEST_CASE("Trim, prefixes, lower case") {
  CHECK(Trim("  x y \n") == "x y");
  CHECK(Trim(" \t") == "");
  CHECK(StartsWith("/api/v1", "/api"));
  CHECK_FALSE(StartsWith("/a", "/api"));
  CHECK(EndsWith("file.tar.zst", ".zst"));
  CHECK(ToLower("Content-Type") == "content-type");
}

TEST_CASE("ParseUint and ParseInt reject junk, signs and overflow") {
  CHECK(ParseUint("42") == 42u);
  CHECK_FALSE(ParseUint("").has_value());
  CHECK_FALSE(ParseUint("4x").has_value());
  CHECK_FALSE(ParseUint("-1").has_value());
  CHECK_FALSE(ParseUint("99999999999999999999999").has_value());
  CHECK(ParseInt("-7") == -7);
}

TEST_CASE("human formats") {
  CHECK(HumanBytes(512) == "512 B");
  CHECK(HumanBytes(1536) == "1.5 KiB");
  CHECK(HumanBytes(3ull << 30) == "3.0 GiB");
  CHECK(HumanDuration(12) == "12s");
  CHECK(HumanDuration(185) == "3m05s");
  CHECK(HumanDuration(3720) == "1h02m");
  CHECK(HumanDuration(-1) == "--");
}

TEST_CASE("URL encoding round-trips and leaves bad escapes alone") {
  CHECK(UrlEncode("/kiln/nodes/a b") == "/kiln/nodes/a%20b");
  CHECK(UrlDecode(UrlEncode("x=1&y=ü")) == "x=1&y=ü");
  CHECK(UrlDecode("%zz%4") == "%zz%4");
  CHECK(HexEncode("\x01\xff") == "01ff");
}
