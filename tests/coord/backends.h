#pragma once
// The two coordination backends as test fixtures, and CONFORMANCE_TEST,
// which defines one test body and runs it against both:
//
//   CONFORMANCE_TEST("create sets the stat") { auto& s = b.store(); ... }
//
// expands to "embedded: create sets the stat" [embedded] and
// "zookeeper: create sets the stat" [zookeeper]. The zookeeper cases share
// one real ZooKeeper server per test process; each case gets its own chroot.
// Without the zookeeper package they pass with a "SKIP: ..." warning.

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/coord/coord_store.h"
#include "tests/coord/zk_test_server.h"
#include "tests/support/temp_dir.h"

namespace kiln::test {

class Backend {
 public:
  virtual ~Backend() = default;
  // Options used when the store is (re)opened; tweak before store().
  coord::CoordOptions options;
  // The store, opened on first use. REQUIREs that it opens.
  coord::CoordStore& store();
  // Closes the store and opens it again on the same data.
  coord::CoordStore& Reopen();
  void Close() { store_.reset(); }
  virtual std::string url() = 0;
  virtual bool is_embedded() const = 0;

 private:
  std::unique_ptr<coord::CoordStore> store_;
};

class EmbeddedBackend : public Backend {
 public:
  std::string url() override { return "embedded:" + dir_.Sub("coord"); }
  bool is_embedded() const override { return true; }
  std::string dir() const { return dir_.Sub("coord"); }

 private:
  TempDir dir_;
};

class ZooKeeperBackend : public Backend {
 public:
  ZooKeeperBackend();
  std::string url() override { return url_; }
  bool is_embedded() const override { return false; }

 private:
  std::string url_;
};

// Unwraps a Result in a test: REQUIREs ok, naming the status otherwise.
template <typename T>
T Must(Result<T> r) {
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}
inline void MustOk(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

}  // namespace kiln::test

#define KILN_CONF_FN_(line) KILN_CONCAT_(kiln_conformance_, line)
#define CONFORMANCE_TEST_IMPL_(name, fn)                     \
  static void fn(::kiln::test::Backend& b);                  \
  TEST_CASE("embedded: " name, "[embedded]") {               \
    ::kiln::test::EmbeddedBackend b;                         \
    fn(b);                                                   \
  }                                                          \
  TEST_CASE("zookeeper: " name, "[zookeeper]") {             \
    if (!::kiln::test::ZkAvailable()) {                      \
      WARN("SKIP: " << ::kiln::test::ZkUnavailableReason()); \
      return;                                                \
    }                                                        \
    ::kiln::test::ZooKeeperBackend b;                        \
    fn(b);                                                   \
  }                                                          \
  static void fn([[maybe_unused]] ::kiln::test::Backend& b)
#define CONFORMANCE_TEST(name) CONFORMANCE_TEST_IMPL_(name, KILN_CONF_FN_(__LINE__))
