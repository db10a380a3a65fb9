#pragma once
// A real `kiln serve` process on a fresh data directory and a free loopback
// port, for integration tests that use kiln the way an operator does.

#include <memory>
#include <string>
#include <vector>

#include "common/api_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace kiln::test {

class KilnServer {
 public:
  // Starts `kiln serve --data <tmp> --listen 127.0.0.1:0 <extra_args>` and
  // waits until it answers /healthz. REQUIREs success.
  explicit KilnServer(std::vector<std::string> extra_args = {});
  // Reuses an existing data directory (for restart tests).
  KilnServer(const std::string& data_dir, std::vector<std::string> extra_args);
  ~KilnServer();

  const std::string& url() const { return url_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string token() const;
  Process& process() { return *process_; }
  ApiClient Client() const;

  // Runs `kiln ARGS... --server URL --token T` (the client side).
  RunResult Kiln(std::vector<std::string> args) const;

  // SIGTERM and wait; returns the exit code.
  int Stop();

 private:
  void Launch(std::vector<std::string> extra_args);

  std::unique_ptr<TempDir> tmp_;
  std::string data_dir_;
  std::string url_;
  std::unique_ptr<Process> process_;
};

}  // namespace kiln::test
