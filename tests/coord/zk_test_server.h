#pragma once
// A real ZooKeeper server (Debian's `zookeeper` package) on a free loopback
// port, with its own configuration and data in a temporary directory, for
// the conformance suite's zookeeper run. Stopped by its pid on destruction.

#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace kiln::test {

class ZkTestServer {
 public:
  // Starts the server and waits until it answers `srvr`. REQUIREs success.
  ZkTestServer();
  ~ZkTestServer();

  // One server per test process, started on first use.
  static ZkTestServer& Shared();

  // "127.0.0.1:PORT"
  std::string hostport() const;
  int port() const { return port_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// Whether this machine can run a ZooKeeper server (Debian's `zookeeper`
// package and java; scripts/bootstrap installs both). Tests that need one
// SKIP with ZkUnavailableReason() when it cannot.
bool ZkAvailable();
std::string ZkUnavailableReason();

// Sends a four-letter command and returns the answer ("" on failure).
std::string ZkFourLetter(int port, const std::string& cmd);

}  // namespace kiln::test
