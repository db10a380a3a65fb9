#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>

#include "agent/progress_journal.h"
#include "agent/progress_reporter.h"
#include "common/file_util.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
using kiln::test::TempDir;

namespace {

ProgressEvent Ev(const std::string& msg) {
  ProgressEvent e;
  e.kind = ProgressEvent::Kind::kLog;
  e.message = msg;
  return e;
}

// A server that keeps events in order, ignores ones it already has, and can
// be switched off to play an outage.
struct FakeServer {
  std::mutex mu;
  std::vector<ProgressEvent> got;
  std::atomic<bool> up{true};
  std::atomic<int> calls{0};

  Result<uint64_t> Receive(const std::vector<ProgressEvent>& batch) {
    ++calls;
    if (!up) return Unavailable("connection refused");
    std::lock_guard lock(mu);
    for (const auto& e : batch)
      if (e.seq == got.size() + 1) got.push_back(e);
    return static_cast<uint64_t>(got.size());
  }
};

}  // namespace

TEST_CASE("events round-trip through JSON and bad ones are refused") {
  ProgressEvent e;
  e.seq = 7;
  e.kind = ProgressEvent::Kind::kResult;
  e.ok = false;
  e.message = "script failed";
  auto back = ProgressEvent::FromJson(e.ToJson());
  REQUIRE(back.ok());
  CHECK(back->seq == 7);
  CHECK(back->kind == ProgressEvent::Kind::kResult);
  CHECK_FALSE(back->ok);
  CHECK(ProgressEvent::FromJson({{"seq", 0}}).status().message() == "event seq must be 1 or more");
  CHECK(ProgressEvent::FromJson({{"seq", 1}, {"kind", "dance"}}).status().message() ==
        "event 1: unknown kind \"dance\"");
  CHECK(ProgressEvent::FromJson({{"seq", 1}, {"level", "loud"}}).status().code() ==
        Code::kInvalidArgument);
  CHECK(ProgressEvent::FromJson({{"kind", "log"}}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("the journal keeps events and the acknowledged mark across restarts") {
  TempDir t;
  {
    auto j = ProgressJournal::Open(t.path());
    REQUIRE(j.ok());
    for (int i = 0; i < 5; ++i) CHECK(*j->Append(Ev("e" + std::to_string(i))) == uint64_t(i + 1));
    REQUIRE(j->MarkAcked(2).ok());
    CHECK_FALSE(j->MarkAcked(9).ok());
  }
  auto j = ProgressJournal::Open(t.path());
  REQUIRE(j.ok());
  CHECK(j->last_seq() == 5);
  CHECK(j->acked() == 2);
  auto pending = j->Pending(10);
  REQUIRE(pending.size() == 3);
  CHECK(pending[0].seq == 3);
  CHECK(pending[0].message == "e2");
  CHECK(j->Pending(1).size() == 1);
}

TEST_CASE("a torn last line is dropped and numbering continues after the good ones") {
  TempDir t;
  {
    auto j = ProgressJournal::Open(t.path());
    REQUIRE(j.ok());
    for (int i = 0; i < 3; ++i) REQUIRE(j->Append(Ev("x")).ok());
  }
  std::string path = t.Sub("events.jsonl");
  std::string text = *ReadFile(path);
  REQUIRE(WriteFileAtomic(path, text + "{\"seq\":4,\"kind\":\"lo", 0600).ok());
  auto j = ProgressJournal::Open(t.path());
  REQUIRE(j.ok());
  CHECK(j->last_seq() == 3);
  CHECK(*ReadFile(path) == text);
  CHECK(*j->Append(Ev("next")) == 4);
}

TEST_CASE("the reporter ships every event in order, through an outage") {
  TempDir t;
  FakeServer server;
  auto journal = ProgressJournal::Open(t.path());
  REQUIRE(journal.ok());
  ReporterOptions opts;
  opts.min_backoff = std::chrono::milliseconds(5);
  opts.max_backoff = std::chrono::milliseconds(20);
  opts.sample_every = std::chrono::milliseconds(0);
  ProgressReporter r(std::move(*journal),
                     [&](const std::vector<ProgressEvent>& b) { return server.Receive(b); }, opts);
  r.Phase("partition", "sda");
  server.up = false;
  for (int i = 1; i <= 50; ++i) r.Progress("deploy", i * 10, 500);
  r.Log("warn", "slow disk");
  CHECK(r.Flush(std::chrono::milliseconds(50)).code() == Code::kTimeout);
  CHECK(r.last_error().find("connection refused") != std::string::npos);
  server.up = true;
  r.Result(true, "installed");
  REQUIRE(r.Flush(std::chrono::seconds(20)).ok());

  std::lock_guard lock(server.mu);
  REQUIRE(server.got.size() == 53);
  for (size_t i = 0; i < server.got.size(); ++i) CHECK(server.got[i].seq == i + 1);
  CHECK(server.got.front().kind == ProgressEvent::Kind::kPhase);
  CHECK(server.got[10].phase == "partition");
  CHECK(server.got.back().kind == ProgressEvent::Kind::kResult);
  CHECK(server.got.back().message == "installed");
}

TEST_CASE("events not acknowledged before a crash are sent by the next agent") {
  TempDir t;
  FakeServer server;
  server.up = false;
  {
    auto journal = ProgressJournal::Open(t.path());
    REQUIRE(journal.ok());
    ProgressReporter r(std::move(*journal),
                       [&](const std::vector<ProgressEvent>& b) { return server.Receive(b); });
    r.Phase("deploy", "web@3");
    r.Log("info", "half way");
  }
  server.up = true;
  auto journal = ProgressJournal::Open(t.path());
  REQUIRE(journal.ok());
  ProgressReporter r(std::move(*journal),
                     [&](const std::vector<ProgressEvent>& b) { return server.Receive(b); });
  r.Log("info", "after restart");
  REQUIRE(r.Flush(std::chrono::seconds(20)).ok());
  std::lock_guard lock(server.mu);
  REQUIRE(server.got.size() == 3);
  CHECK(server.got[0].message == "web@3");
  CHECK(server.got[2].message == "after restart");
}

TEST_CASE("progress samples are rate-limited but phase changes and completion always go out") {
  TempDir t;
  FakeServer server;
  auto journal = ProgressJournal::Open(t.path());
  REQUIRE(journal.ok());
  ReporterOptions opts;
  opts.sample_every = std::chrono::hours(1);
  ProgressReporter r(std::move(*journal),
                     [&](const std::vector<ProgressEvent>& b) { return server.Receive(b); }, opts);
  r.Phase("deploy", "");
  for (int i = 0; i <= 1000; ++i) r.Progress("objects", i, 1000);
  REQUIRE(r.Flush(std::chrono::seconds(20)).ok());
  std::lock_guard lock(server.mu);
  // The phase, the first sample of the step, and the completed one.
  REQUIRE(server.got.size() == 3);
  CHECK(server.got[1].done == 0);
  CHECK(server.got[2].done == 1000);
}
