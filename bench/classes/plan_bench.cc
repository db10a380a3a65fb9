// Plans resolved per second for N distinct nodes against a config space, on
// one core, side by side with the anchor: the same resolution with a fresh
// Lua state per node (what a tool that starts an interpreter per node pays,
// before it even forks). Prints one JSON line per measurement.
//
//   classes_bench SPACE_DIR FACTS_DIR [--nodes N] [--cold N]

#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "classes/resolver.h"
#include "classes/space.h"
#include "common/file_util.h"
#include "common/json.h"

using namespace kiln;
using namespace kiln::classes;

namespace {

// 10,000 distinct nodes from the example facts: hostnames, racks, disk
// sizes, memory, GPUs and MACs all vary.
std::vector<NodeRecord> MakeNodes(const std::string& facts_dir, int n) {
  // Each tier starts from the example machine of its kind.
  auto load = [&](const char* name) {
    return *ParseJson(*ReadFile(facts_dir + "/" + name + ".json"));
  };
  std::vector<Json> templates = {load("web01"), load("db01"), load("gpu01"), load("web02")};
  std::mt19937 rng(42);
  const char* tiers[] = {"web", "db", "gpu", "cache"};
  const char* racks[] = {"tor-a1", "tor-b2", "tor-a1", "spine-1"};  // spine-1: no rack class
  std::vector<NodeRecord> nodes;
  for (int i = 0; i < n; ++i) {
    Json facts = templates[static_cast<size_t>(i) % 4];
    std::string host = fmt::format("{}{:04d}", tiers[i % 4], i);
    facts["memory"]["total_bytes"] = (uint64_t{16} << 30) * (1 + rng() % 32);
    for (auto& d : facts["disks"])
      d["size_bytes"] = d["size_bytes"].get<uint64_t>() + (uint64_t{rng() % 1024} << 30);
    for (size_t k = 0; k < facts["nics"].size(); ++k) {
      facts["nics"][k]["mac"] = fmt::format("52:54:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 16) & 255,
                                            (i >> 8) & 255, i & 255, k);
      facts["nics"][k]["lldp"]["system_name"] = racks[rng() % 4];
    }
    NodeRecord rec;
    rec.id = host;
    rec.hostname = host;
    for (const auto& nic : facts["nics"]) rec.macs.push_back(nic["mac"]);
    rec.facts = std::move(facts);
    nodes.push_back(std::move(rec));
  }
  return nodes;
}

// CPU time of this thread: what one core spent, whoever else shares it.
double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

long MaxRssKb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: classes_bench SPACE_DIR FACTS_DIR [--nodes N] [--cold N]\n");
    return 2;
  }
  int n = 10000, cold_n = 300;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--nodes") n = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--cold") cold_n = std::stoi(argv[i + 1]);
  }
  long rss0 = MaxRssKb();
  Diagnostics diags;
  auto t_load = std::chrono::steady_clock::now();
  auto space = LoadSpace(argv[1], &diags);
  if (!space) {
    std::fprintf(stderr, "%s\n", diags.Render().c_str());
    return 1;
  }
  double load_s = Seconds(t_load);
  auto nodes = MakeNodes(argv[2], n);
  Resolver resolver(space);
  (void)resolver.Resolve(nodes[0]);  // compile the chunks once

  auto run = [&](const char* name, bool explain, bool json) {
    size_t bytes = 0;
    int errors = 0;
    double c0 = CpuNow();
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& node : nodes) {
      Plan plan;
      Diagnostic err;
      if (!resolver.Resolve(node, {.explain = explain}, &plan, &err)) {
        if (errors++ == 0)
          std::fprintf(stderr, "first error (%s): %s\n", node.id.c_str(), err.OneLine().c_str());
        continue;
      }
      if (json) bytes += PlanToJson(plan, explain).dump().size();
    }
    double s = Seconds(t0), cpu = CpuNow() - c0;
    fmt::print(
        "{{\"case\":\"{}\",\"nodes\":{},\"errors\":{},\"seconds\":{:.3f},\"plans_per_s\":{:.0f},"
        "\"cpu_seconds\":{:.3f},\"plans_per_cpu_s\":{:.0f},\"json_bytes_per_plan\":{}}}\n",
        name, nodes.size(), errors, s, nodes.size() / s, cpu, nodes.size() / cpu,
        json ? bytes / nodes.size() : 0);
    return nodes.size() / cpu;
  };
  double warm = run("resolve", false, false);
  run("resolve+json", false, true);
  run("resolve+explain+json", true, true);

  // The anchor: a fresh Lua state (and chunk compilation) per node.
  double c0 = CpuNow();
  for (int i = 0; i < cold_n; ++i) {
    Resolver fresh(space);
    (void)fresh.Resolve(nodes[static_cast<size_t>(i) % nodes.size()]);
  }
  double cold = cold_n / (CpuNow() - c0);
  fmt::print(
      "{{\"case\":\"anchor: fresh Lua state per node\",\"nodes\":{},\"plans_per_cpu_s\":{:.0f}}}\n",
      cold_n, cold);
  fmt::print(
      "{{\"case\":\"summary\",\"space_load_ms\":{:.1f},\"lua_state_bytes\":{},\"max_rss_kb\":{},"
      "\"rss_before_kb\":{},"
      "\"warm_over_anchor\":{:.1f}}}\n",
      load_s * 1000, resolver.lua_bytes(), MaxRssKb(), rss0, warm / cold);
  return 0;
}
