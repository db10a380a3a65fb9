#include <catch2/catch.hpp>

#include "pxe/mac.h"

using namespace kiln;
using namespace kiln::pxe;

TEST_CASE("MACs parse in the usual spellings and print lower-case") {
  for (const char* s : {"52:54:00:12:34:56", "52-54-00-12-34-56", "525400123456",
                        "52:54:00:12:34:56", "52:54:00:12:34:56"}) {
    auto m = ParseMac(s);
    REQUIRE(m.ok());
    CHECK(m->ToString() == "52:54:00:12:34:56");
  }
  auto upper = ParseMac("AA:BB:CC:DD:EE:0F");
  REQUIRE(upper.ok());
  CHECK(upper->ToString() == "aa:bb:cc:dd:ee:0f");
  CHECK(upper->Dashed() == "aa-bb-cc-dd-ee-0f");
  CHECK(upper->Hex() == "aabbccddee0f");
}

TEST_CASE("bad MACs are refused with a message that quotes them") {
  for (const char* s : {"", "52:54:00:12:34", "52:54:00:12:34:5g", "52:54-00:12:34:56",
                        "52:54:00:12:34:56:78", "5254.0012.3456", "zz:zz:zz:zz:zz:zz"}) {
    auto m = ParseMac(s);
    INFO(s);
    REQUIRE(!m.ok());
    CHECK(m.status().message() == std::string("\"") + s +
                                      "\" is not a MAC address (expected six hex pairs like "
                                      "52:54:00:12:34:56)");
  }
  CHECK(ParseMac("00:00:00:00:00:00").status().message().find("zero MAC") != std::string::npos);
  CHECK(ParseMac("ff:ff:ff:ff:ff:ff").status().message().find("multicast or broadcast") !=
        std::string::npos);
  CHECK(ParseMac("01:00:5e:00:00:01").status().code() == Code::kInvalidArgument);
}
