#include "common/log.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("log lines are logfmt with quoted values where needed") {
  std::string line = log::FormatLine(log::Level::kInfo, "serve", "listening",
                                     {{"addr", "127.0.0.1:80"}, {"threads", 2}});
  CHECK(line.find(" INFO serve listening addr=127.0.0.1:80 threads=2\n") != std::string::npos);
  CHECK(line[4] == '-');
  CHECK(line.find("Z INFO") == 23);

  std::string q = log::FormatLine(log::Level::kError, "x", "two words",
                                  {{"msg", "say \"hi\"\n"}, {"empty", ""}});
  CHECK(q.find("ERROR x \"two words\" msg=\"say \\\"hi\\\"\\n\" empty=\"\"") != std::string::npos);
}

TEST_CASE("log levels parse and filter") {
  log::Level l;
  CHECK(log::ParseLevel("warn", &l));
  CHECK(l == log::Level::kWarn);
  CHECK_FALSE(log::ParseLevel("loud", &l));
}
