#include "tests/coord/backends.h"

#include "common/hash.h"
#include "common/log.h"
#include "tests/coord/zk_test_server.h"

namespace kiln::test {

coord::CoordStore& Backend::store() {
  if (!store_) {
    log::SetLevel(log::Level::kWarn);
    options.url = url();
    auto s = coord::CoordStore::Open(options);
    INFO("opening " << options.url << ": " << s.status().ToString());
    REQUIRE(s.ok());
    store_ = std::move(*s);
  }
  return *store_;
}

coord::CoordStore& Backend::Reopen() {
  store_.reset();
  return store();
}

ZooKeeperBackend::ZooKeeperBackend() {
  url_ = "zk://" + ZkTestServer::Shared().hostport() + "/conformance-" + RandomHex(6);
  // ZooKeeper cannot take sessions shorter than its minSessionTimeout.
  options.min_session_timeout = std::chrono::milliseconds(200);
}

}  // namespace kiln::test
