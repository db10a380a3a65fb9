#include "tests/classes/space_builder.h"

#include <catch2/catch.hpp>

namespace kiln::test {

SpaceBuilder::SpaceBuilder(Files files) {
  if (!files.count("classes.list"))
    files["classes.list"] = "WEB web\nDB database\nGPU gpu\nEXTRA extra\n";
  for (const auto& [path, content] : files) WriteTestFile(tmp_.Sub(path), content);
}

std::shared_ptr<const classes::Space> SpaceBuilder::Load() const {
  classes::Diagnostics d;
  auto s = classes::LoadSpace(dir(), &d);
  INFO(d.Render());
  REQUIRE(s);
  return s;
}

std::string SpaceBuilder::Problems() const {
  classes::Diagnostics d;
  auto s = classes::LoadSpace(dir(), &d);
  return d.Render();
}

std::string SpaceBuilder::OneLines() const {
  classes::Diagnostics d;
  auto s = classes::LoadSpace(dir(), &d);
  std::string out;
  for (const auto& e : d.items()) out += e.OneLine() + "\n";
  return out;
}

classes::NodeRecord TestNode(const std::string& host) {
  classes::NodeRecord n;
  n.id = host;
  n.hostname = host;
  n.facts = {{"memory", {{"total_bytes", 8ull << 30}}},
             {"disks", Json::array({{{"name", "sda"}, {"size_bytes", 100ull << 30}}})},
             {"nics", Json::array({{{"name", "eth0"}, {"mac", "52:54:00:00:00:01"}}})},
             {"pci", Json::array()},
             {"firmware", {{"type", "uefi"}}}};
  n.macs = {"52:54:00:00:00:01"};
  return n;
}

std::string ResolveError(const classes::Resolver& r, const classes::NodeRecord& n,
                         classes::Plan* plan, bool explain) {
  classes::Plan p;
  classes::Diagnostic err;
  if (!r.Resolve(n, {.explain = explain}, &p, &err)) return err.Render();
  if (plan) *plan = std::move(p);
  return "";
}

}  // namespace kiln::test
