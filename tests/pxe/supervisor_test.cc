// The supervisor with real child processes: restarts with backoff, output
// forwarded line by line, a killed child comes back, Stop ends it.

#include <signal.h>

#include <catch2/catch.hpp>

#include <mutex>

#include "pxe/supervisor.h"
#include "tests/support/process.h"

using namespace kiln;
using namespace kiln::pxe;
using namespace std::chrono_literals;
using kiln::test::WaitUntil;

namespace {
struct Lines {
  std::mutex mu;
  std::vector<std::string> v;
  void Add(std::string_view l) {
    std::lock_guard lock(mu);
    v.emplace_back(l);
  }
  size_t Count(const std::string& s) {
    std::lock_guard lock(mu);
    return static_cast<size_t>(std::count(v.begin(), v.end(), s));
  }
};
}  // namespace

TEST_CASE("a child that exits is restarted, and its output lines are forwarded") {
  Lines lines;
  SupervisorOptions o;
  o.name = "test-child";
  o.argv = {"/bin/sh", "-c", "echo hello; echo oops >&2; printf 'no newline'; exit 3"};
  o.initial_backoff = 10ms;
  o.max_backoff = 40ms;
  o.on_line = [&](std::string_view l) { lines.Add(l); };
  auto s = Supervisor::Start(o);
  REQUIRE(s.ok());
  CHECK(WaitUntil([&] { return (*s)->starts() >= 3; }));
  CHECK(WaitUntil([&] { return lines.Count("no newline") >= 3; }));
  CHECK(lines.Count("hello") >= 3);
  CHECK(lines.Count("oops") >= 3);
  CHECK((*s)->Describe()["last_exit"] == "exit status 3");
  (*s)->Stop();
  CHECK((*s)->Describe()["state"] == "stopped");
}

TEST_CASE("a killed child comes back with a new pid, and Stop ends a running one") {
  SupervisorOptions o;
  o.name = "sleeper";
  o.argv = {"/bin/sleep", "300"};
  o.initial_backoff = 10ms;
  auto s = Supervisor::Start(o);
  REQUIRE(s.ok());
  REQUIRE(WaitUntil([&] { return (*s)->pid() > 0; }));
  pid_t first = (*s)->pid();
  CHECK((*s)->Describe()["state"] == "running");
  ::kill(first, SIGKILL);
  REQUIRE(WaitUntil([&] { return (*s)->pid() > 0 && (*s)->pid() != first; }));
  CHECK((*s)->Describe()["last_exit"] == "killed by signal 9");
  CHECK((*s)->starts() == 2);
  pid_t second = (*s)->pid();
  (*s)->Stop();
  CHECK(::kill(second, 0) != 0);  // gone (reaped)
  CHECK((*s)->Describe()["last_exit"] == "killed by signal 15");
}

TEST_CASE("a program that cannot start is reported and retried") {
  SupervisorOptions o;
  o.name = "missing";
  o.argv = {"/nonexistent/dnsmasq"};
  o.initial_backoff = 10ms;
  auto s = Supervisor::Start(o);
  REQUIRE(s.ok());
  CHECK(WaitUntil([&] {
    return (*s)->Describe().value("last_exit", "") ==
           "cannot start /nonexistent/dnsmasq: No such file or directory";
  }));
  CHECK((*s)->starts() == 0);
  CHECK((*s)->Describe()["state"] != "running");
}

TEST_CASE("a child that ignores SIGTERM is killed after the grace period") {
  SupervisorOptions o;
  o.name = "stubborn";
  o.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"};
  o.stop_grace = 100ms;
  bool ready = false;
  std::mutex mu;
  o.on_line = [&](std::string_view l) {
    std::lock_guard lock(mu);
    if (l == "ready") ready = true;
  };
  auto s = Supervisor::Start(o);
  REQUIRE(s.ok());
  REQUIRE(WaitUntil([&] {
    std::lock_guard lock(mu);
    return ready;
  }));
  (*s)->Stop();
  CHECK((*s)->Describe()["last_exit"] == "killed by signal 9");
}
