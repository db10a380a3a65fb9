#include "classes/config_check.h"

#include <algorithm>
#include <filesystem>

#include "classes/names.h"
#include "classes/node.h"
#include "classes/resolver.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::classes {

Json SampleFacts() {
  constexpr uint64_t G = 1ull << 30;
  return {
      {"schema", kFactsSchema},
      {"cpu",
       {{"model", "sample CPU"},
        {"vendor", "GenuineIntel"},
        {"arch", "x86_64"},
        {"sockets", 1},
        {"cores", 8},
        {"threads", 16},
        {"flags", Json::array()}}},
      {"memory", {{"total_bytes", 64 * G}}},
      {"disks", Json::array({{{"name", "sda"},
                              {"path", "/dev/sda"},
                              {"size_bytes", 480 * G},
                              {"rotational", false},
                              {"removable", false},
                              {"transport", "sata"},
                              {"model", "sample SSD"},
                              {"serial", "SAMPLE1"}},
                             {{"name", "sdb"},
                              {"path", "/dev/sdb"},
                              {"size_bytes", 4096 * G},
                              {"rotational", true},
                              {"removable", false},
                              {"transport", "sata"},
                              {"model", "sample HDD"},
                              {"serial", "SAMPLE2"}}})},
      {"nics", Json::array({{{"name", "eth0"}, {"mac", "52:54:00:00:00:01"}, {"link", true}}})},
      {"dmi", {{"sys_vendor", "kiln"}, {"product_name", "sample"}}},
      {"pci", Json::array()},
      {"firmware", {{"type", "uefi"}, {"secure_boot", false}}},
  };
}

Result<CheckReport> CheckSpace(const std::string& dir, const std::vector<std::string>& fact_paths,
                               SandboxLimits limits) {
  CheckReport report;
  auto space = LoadSpace(dir, &report.problems);
  report.contexts.assign(report.problems.size(), "loading the space");
  if (!space) return report;
  report.digest = space->digest;
  report.classes = static_cast<int>(space->declared.size());
  report.rules = static_cast<int>(space->rules.size());
  report.files = static_cast<int>(space->files.size());

  struct Sample {
    std::string hostname;
    std::string what;
    Json facts;
  };
  std::vector<Sample> samples;
  std::vector<std::string> files;
  for (const auto& p : fact_paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : std::filesystem::directory_iterator(p, ec))
        if (EndsWith(e.path().string(), ".json")) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  for (const auto& f : files) {
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(f));
    KILN_ASSIGN_OR_RETURN(Json facts, ParseJson(text, f));
    if (auto s = ValidateFacts(facts); !s.ok()) return s.WithContext(f);
    std::string host = std::filesystem::path(f).stem().string();
    if (!IsHostName(host)) host = "sample";
    samples.push_back({host, f, std::move(facts)});
  }
  if (samples.empty()) samples.push_back({"sample", "the built-in sample node", SampleFacts()});

  Resolver resolver(space, limits);
  auto run = [&](const std::string& host, const Json& facts, std::vector<std::string> classes,
                 const std::string& context) {
    NodeRecord n;
    n.id = host;
    n.hostname = host;
    n.facts = facts;
    n.classes = std::move(classes);
    Plan plan;
    Diagnostic err;
    ++report.plans;
    if (!resolver.Resolve(n, {}, &plan, &err)) {
      size_t before = report.problems.size();
      report.problems.Add(err);
      if (report.problems.size() > before) report.contexts.push_back(context);
    }
  };
  for (const auto& s : samples)
    run(s.hostname, s.facts, {}, "node " + s.hostname + " (" + s.what + ")");
  const Sample& first = samples.front();
  for (const auto& [cls, decl] : space->declared) {
    if (cls == kDefaultClass || cls == kLastClass) continue;
    run(first.hostname, first.facts, {cls},
        "node " + first.hostname + " with class " + cls + " forced on (" + first.what + ")");
  }
  for (const auto& [host, entries] : space->hosts)
    run(host, first.facts, {}, "host " + host + " (with the facts of " + first.what + ")");
  return report;
}

}  // namespace kiln::classes
