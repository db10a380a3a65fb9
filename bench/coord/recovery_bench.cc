// coord_recovery_bench: how long the embedded store takes to open (recover)
// with many znodes in its snapshot and write-ahead log (bench/coord/run
// --recovery builds this in Release and runs it).
//
//   coord_recovery_bench --dir DIR [--znodes 1000000] [--size 100]
//                        [--rounds 3] [--segment-mb 64]
//
// Populate: CreateAsync of --znodes persistent znodes of --size bytes
// under /bench/dNNN/ (1,000 children per directory), many in flight, with
// the production options (a snapshot after each --segment-mb of log,
// written while the writes go on), then the store is closed as `kill`
// would leave it: no final snapshot, so the newest changes are only in the
// log. Each round copies that directory afresh (the store snapshots in the
// background after a long replay, which would change the next round's
// input) and times OpenEmbeddedStore on the copy: reading the snapshot,
// replaying the log behind it, and rebuilding the retained change log.
// This is what `kiln serve` spends before it listens; its other start-up
// work does not depend on the number of znodes. The page cache is warm
// (the data was just written or copied), as after a process restart.
//
// Prints one line per round and, last, one JSON line.

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "bench/coord/bench_support.h"
#include "common/json.h"
#include "common/log.h"
#include "server/coord/coord_store.h"
#include "server/coord/embedded/embedded_store.h"

using namespace kiln;
using namespace kiln::coord;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Flags {
  std::string dir;
  int64_t znodes = 1000000;
  size_t size = 100;
  int rounds = 3;
  uint64_t segment_mb = 64;
};

[[noreturn]] void Die(const std::string& what) {
  bench::Die("coord_recovery_bench: " + what);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

CoordOptions Options(const Flags& f, const std::string& dir) {
  CoordOptions o;
  o.url = "embedded:" + dir;
  o.segment_bytes = f.segment_mb << 20;
  return o;
}

std::unique_ptr<CoordStore> OpenOrDie(const Flags& f, const std::string& dir) {
  auto s = OpenEmbeddedStore(Options(f, dir), dir);
  if (!s.ok()) Die("open " + dir + ": " + s.status().ToString());
  return std::move(*s);
}

// Creates the znodes, at most `inflight` requests outstanding.
void Populate(const Flags& f, CoordStore& s) {
  constexpr int64_t kPerDir = 1000;
  constexpr int64_t kInflight = 20000;
  if (!s.EnsurePath("/bench").ok()) Die("create /bench");
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  std::string failure;
  const std::string data(f.size, 'x');
  auto wait_below = [&](int64_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outstanding < n || !failure.empty(); });
    if (!failure.empty()) Die("create: " + failure);
  };
  for (int64_t i = 0; i < f.znodes; ++i) {
    std::string path;
    if (i % kPerDir == 0) {
      wait_below(1);  // the directory before its children
      if (!s.Create(fmt::format("/bench/d{:04}", i / kPerDir)).ok()) Die("create a directory");
    }
    path = fmt::format("/bench/d{:04}/n{:04}", i / kPerDir, i % kPerDir);
    wait_below(kInflight);
    {
      std::lock_guard lock(mu);
      ++outstanding;
    }
    s.CreateAsync(CreateOp{.path = std::move(path), .data = data}, [&](Result<CreateResult> r) {
      std::lock_guard lock(mu);
      --outstanding;
      if (!r.ok() && failure.empty()) failure = r.status().ToString();
      cv.notify_all();
    });
  }
  wait_below(1);
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (bench::FlagReader r("coord_recovery_bench", argc, argv); r.Next();) {
    const std::string& a = r.flag();
    if (a == "--dir")
      f.dir = r.Value();
    else if (a == "--znodes")
      f.znodes = std::stoll(r.Value());
    else if (a == "--size")
      f.size = std::stoul(r.Value());
    else if (a == "--rounds")
      f.rounds = std::stoi(r.Value());
    else if (a == "--segment-mb")
      f.segment_mb = std::stoull(r.Value());
    else
      Die("unknown argument " + a);
  }
  if (f.dir.empty()) Die("--dir is required");
  log::SetLevel(log::Level::kWarn);

  const std::string src = f.dir + "/populated";
  fs::remove_all(src);
  Json populated;
  {
    auto s = OpenOrDie(f, src);
    auto t0 = Clock::now();
    Populate(f, *s);
    double secs = Seconds(Clock::now() - t0);
    populated = s->Describe();
    fmt::print(
        "populate: {} znodes of {} bytes in {:.1f} s ({:.0f} creates/s); "
        "snapshots taken {}, log segments {}\n",
        f.znodes, f.size, secs, static_cast<double>(f.znodes) / secs,
        populated["snapshot"]["taken"].get<int64_t>(), populated["log"]["segments"].get<int64_t>());
  }  // closed: no final snapshot, the tail stays in the log

  uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(src)) bytes += e.file_size();

  std::vector<double> times;
  Json last;
  for (int r = 0; r < f.rounds; ++r) {
    const std::string copy = f.dir + "/round";
    fs::remove_all(copy);
    fs::copy(src, copy, fs::copy_options::recursive);
    auto t0 = Clock::now();
    auto s = OpenOrDie(f, copy);
    double secs = Seconds(Clock::now() - t0);
    last = s->Describe();
    int64_t expect = populated["znodes"].get<int64_t>();
    if (last["znodes"].get<int64_t>() != expect)
      Die(fmt::format("recovered {} znodes, expected {}", last["znodes"].get<int64_t>(), expect));
    times.push_back(secs);
    fmt::print(
        "round {}: open {:.3f} s; {} znodes; snapshot at zxid {} ({} znodes), "
        "{} transactions replayed from the log\n",
        r + 1, secs, last["znodes"].get<int64_t>(),
        last["recovery"]["snapshot_zxid"].get<int64_t>(), last["snapshot"]["znodes"].get<int64_t>(),
        last["recovery"]["replayed"].get<int64_t>());
    s.reset();
  }
  fs::remove_all(f.dir + "/round");
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  double median = sorted[sorted.size() / 2];
  fmt::print("recovery: median open {:.3f} s over {} rounds ({} bytes on disk)\n", median, f.rounds,
             bytes);
  Json out = {{"bench", "coord-recovery"},
              {"znodes", f.znodes},
              {"size", f.size},
              {"disk_bytes", bytes},
              {"open_seconds", times},
              {"median_open_seconds", median},
              {"snapshot_zxid", last["recovery"]["snapshot_zxid"]},
              {"replayed_txns", last["recovery"]["replayed"]},
              {"zxid", last["zxid"]}};
  fmt::print("{}\n", out.dump());
  return 0;
}
