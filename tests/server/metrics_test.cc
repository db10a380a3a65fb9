#include "server/metrics.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("metrics render in Prometheus text format") {
  Metrics m;
  m.Counter("kiln_x_total", "things", {{"route", "/a"}}).fetch_add(3);
  m.Counter("kiln_x_total", "things", {{"route", "/a"}}).fetch_add(1);
  m.Counter("kiln_x_total", "things", {{"route", "q\"uote"}}).fetch_add(1);
  m.Gauge("kiln_up", "is it up", {}, [] { return 1.5; });
  std::string text = m.Render();
  CHECK(text.find("# HELP kiln_x_total things\n# TYPE kiln_x_total counter\n") != std::string::npos);
  CHECK(text.find("kiln_x_total{route=\"/a\"} 4\n") != std::string::npos);
  CHECK(text.find("kiln_x_total{route=\"q\\\"uote\"} 1\n") != std::string::npos);
  CHECK(text.find("# TYPE kiln_up gauge\nkiln_up 1.5\n") != std::string::npos);
}
