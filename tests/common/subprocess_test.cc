// RunSubprocess: the child's environment, and children started while other
// threads allocate (the child must not allocate between fork and exec).

#include "common/subprocess.h"

#include <stdlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

using namespace kiln;

TEST_CASE("a child gets this environment with its entries set, replaced or removed") {
  ::setenv("KILN_TEST_KEPT", "kept", 1);
  ::setenv("KILN_TEST_REPLACED", "old", 1);
  ::setenv("KILN_TEST_REMOVED", "gone", 1);
  SubprocessOptions o;
  o.env = {"KILN_TEST_REPLACED=new", "KILN_TEST_ADDED=added=with=equals", "KILN_TEST_REMOVED"};
  auto r = RunSubprocess({"sh", "-c",
                          "echo \"$KILN_TEST_KEPT|$KILN_TEST_REPLACED|$KILN_TEST_ADDED|"
                          "${KILN_TEST_REMOVED-unset}\""},
                         o);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->out == "kept|new|added=with=equals|unset\n");
  // This process's environment is untouched.
  CHECK(std::string(::getenv("KILN_TEST_REPLACED")) == "old");
  CHECK(::getenv("KILN_TEST_ADDED") == nullptr);
}

// Between fork and exec the child of a threaded process may only make
// async-signal-safe calls: one that allocated while another thread held
// the allocator's lock at the fork waits for it forever (seen once under
// ASan: an agent's hook child spinning in the allocator, the install
// stuck). Children started while two threads allocate without pause must
// all run. This did not reproduce that hang with the old code in 600
// tries (it is rare); the fix is by construction, this guards the path.
TEST_CASE("children started while other threads allocate all run") {
  std::atomic<bool> stop{false};
  auto churn = [&] {
    while (!stop) {
      // Small and large blocks: the allocator's shared locks are taken
      // for both (thread caches refilled, large blocks mapped).
      std::vector<std::string> v;
      for (int i = 0; i < 64; ++i) v.emplace_back(i % 8 == 0 ? (1 << 20) + i : 1000 + i * 37, 'x');
    }
  };
  std::thread a(churn), b(churn);
  SubprocessOptions o;
  o.env = {"KILN_TEST_CHILD=1"};
  o.timeout = std::chrono::seconds(20);
  int ran = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = RunSubprocess({"true"}, o);
    if (r.ok() && r->exit_code == 0 && !r->timed_out) ++ran;
  }
  stop = true;
  a.join();
  b.join();
  CHECK(ran == 200);
}
