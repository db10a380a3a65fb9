// JsonWriter and JsonScanner against nlohmann: the writer must produce
// nlohmann's bytes, and the scanner must read what it accepts exactly as
// nlohmann does and accept nothing nlohmann rejects.

#include <catch2/catch.hpp>
#include <limits>
#include <random>

#include "common/json.h"
#include "common/json_scanner.h"
#include "common/json_writer.h"

using namespace kiln;

namespace {

std::string NlohmannDump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Written(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

// Random strings from pieces that exercise every escaping and UTF-8 rule.
std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"a",
                                                  "path/x",
                                                  " ",
                                                  "\"",
                                                  "\\",
                                                  "/",
                                                  "\b",
                                                  "\f",
                                                  "\n",
                                                  "\r",
                                                  "\t",
                                                  std::string(1, '\0'),
                                                  "\x01",
                                                  "\x1f",
                                                  "\x7f",
                                                  "\xc3\xa9",
                                                  "\xe2\x82\xac",
                                                  "\xf0\x9f\x98\x80",
                                                  "\xff",
                                                  "\xc0\x80",
                                                  "\xe0\x80\x80",
                                                  "\xed\xa0\x80",
                                                  "\xf4\x90\x80\x80",
                                                  "\xc3",
                                                  "\xe2\x82",
                                                  "\x80",
                                                  "\xf0\x9f\x98"};
  std::string s;
  for (int k = 0, n = static_cast<int>(rng() % 8); k < n; ++k) s += pieces[rng() % pieces.size()];
  return s;
}

}  // namespace

TEST_CASE("JsonWriter writes nlohmann's bytes") {
  CHECK(Written("plain") == "\"plain\"");
  CHECK(Written("q\"b\\s/\n\t\x01\x7f") == "\"q\\\"b\\\\s/\\n\\t\\u0001\x7f\"");
  CHECK(Written("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  // Invalid UTF-8 becomes U+FFFD, as nlohmann's replace handler does.
  CHECK(Written("a\xff") == NlohmannDump(Json("a\xff")));

  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Key("a")
      .BeginArray()
      .Int(std::numeric_limits<int64_t>::min())
      .Int(0)
      .Uint(std::numeric_limits<uint64_t>::max())
      .Bool(true)
      .Bool(false)
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .EndArray()
      .Key("b")
      .String("x")
      .Key("c")
      .Raw("null")
      .EndObject();
  Json j = {{"a",
             {std::numeric_limits<int64_t>::min(), 0, std::numeric_limits<uint64_t>::max(), true,
              false, Json::object(), Json::array()}},
            {"b", "x"},
            {"c", nullptr}};
  CHECK(out == NlohmannDump(j));
}

TEST_CASE("fuzz: JsonWriter strings match nlohmann for any bytes") {
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string s = RandomText(rng);
    INFO(Json(s).dump(-1, ' ', true, Json::error_handler_t::replace));
    REQUIRE(Written(s) == NlohmannDump(Json(s)));
  }
}

TEST_CASE("JsonScanner reads strings, integers and booleans as nlohmann does") {
  auto str = [](std::string_view text) -> std::optional<std::string> {
    JsonScanner sc(text);
    std::string out = "stale";
    if (!sc.String(&out) || !sc.AtEnd()) return std::nullopt;
    return out;
  };
  CHECK(str(R"("")") == "");
  CHECK(str(R"( "a\"b\\c\/d\b\f\n\r\t" )") == "a\"b\\c/d\b\f\n\r\t");
  CHECK(str(R"("\u0041\u00e9\u20AC")") == "A\xc3\xa9\xe2\x82\xac");
  CHECK(str(R"("\u0000")") == std::string(1, '\0'));
  CHECK(str(R"("\ud83d\ude00")") == "\xf0\x9f\x98\x80");
  CHECK(str("\"caf\xc3\xa9\"") == "caf\xc3\xa9");
  // Everything nlohmann refuses, the scanner refuses too.
  for (std::string bad : {R"("\ud83d")", R"("\ude00")", R"("\ud83d\u0041")", R"("\q")", R"("\u12")",
                          R"("\u12g4")", "\"a", "\"a\\", "\"\x01\"", "\"\xff\"", "\"\xc0\x80\"",
                          "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "'a'", "a", "", "\"a\" x"}) {
    INFO(bad);
    CHECK(!str(bad));
    CHECK(!ParseJson(bad).ok());
  }

  auto num = [](std::string_view text) -> std::optional<int64_t> {
    JsonScanner sc(text);
    int64_t v = 42;
    if (!sc.Int(&v) || !sc.AtEnd()) return std::nullopt;
    return v;
  };
  CHECK(num("0") == 0);
  CHECK(num("-0") == 0);
  CHECK(num(" -1 ") == -1);
  CHECK(num("9223372036854775807") == std::numeric_limits<int64_t>::max());
  CHECK(num("-9223372036854775808") == std::numeric_limits<int64_t>::min());
  // Not integers, or too large: left to nlohmann (a float or an unsigned).
  for (std::string other : {"9223372036854775808", "-9223372036854775809", "1.5", "1e3", "1E3",
                            "01", "-", "+1", "0x1", "", "true", "1.0"}) {
    INFO(other);
    CHECK(!num(other));
  }

  auto boolean = [](std::string_view text) -> std::optional<bool> {
    JsonScanner sc(text);
    bool v = false;
    if (!sc.Bool(&v) || !sc.AtEnd()) return std::nullopt;
    return v;
  };
  CHECK(boolean("true") == true);
  CHECK(boolean(" false ") == false);
  for (std::string bad : {"tru", "True", "truex", "falsey", "1", "null", ""}) {
    INFO(bad);
    CHECK(!boolean(bad));
  }
}

TEST_CASE("fuzz: JsonScanner accepts only what nlohmann accepts, with the same value") {
  std::mt19937 rng(5);
  const std::string alphabet = "\"\\/bfnrtu0123456789abcdefABCDEF-.eE \x01\x7f\xc3\xa9\xed\xa0\xff";
  const std::vector<std::string> seeds = {R"("plain text")",
                                          R"("esc \" \\ \n \u00e9 \ud83d\ude00")",
                                          "\"caf\xc3\xa9\"",
                                          "-12345",
                                          "0",
                                          "9223372036854775807",
                                          "true",
                                          "false"};
  int accepted = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string text = seeds[rng() % seeds.size()];
    for (int e = 0, n = static_cast<int>(rng() % 4); e < n && !text.empty(); ++e) {
      size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.erase(at, 1 + rng() % 3); break;
        default: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    INFO(Json(text).dump(-1, ' ', true, Json::error_handler_t::replace));
    auto parsed = ParseJson(text);
    {
      JsonScanner sc(text);
      std::string s;
      if (sc.String(&s) && sc.AtEnd()) {
        ++accepted;
        REQUIRE(parsed.ok());
        REQUIRE(parsed->is_string());
        REQUIRE(parsed->get<std::string>() == s);
      }
    }
    {
      JsonScanner sc(text);
      int64_t v = 0;
      if (sc.Int(&v) && sc.AtEnd()) {
        ++accepted;
        REQUIRE(parsed.ok());
        REQUIRE(parsed->is_number_integer());
        REQUIRE(parsed->get<int64_t>() == v);
      }
    }
    {
      JsonScanner sc(text);
      bool b = false;
      if (sc.Bool(&b) && sc.AtEnd()) {
        ++accepted;
        REQUIRE(parsed.ok());
        REQUIRE(*parsed == b);
      }
    }
  }
  CHECK(accepted > 1000);  // the mutations leave many valid documents
}
