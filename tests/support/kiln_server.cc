#include "tests/support/kiln_server.h"

#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"

namespace kiln::test {

KilnServer::KilnServer(std::vector<std::string> extra_args) : tmp_(std::make_unique<TempDir>()) {
  data_dir_ = tmp_->Sub("data");
  Launch(std::move(extra_args));
}

KilnServer::KilnServer(const std::string& data_dir, std::vector<std::string> extra_args)
    : data_dir_(data_dir) {
  Launch(std::move(extra_args));
}

void KilnServer::Launch(std::vector<std::string> extra_args) {
  std::string info_path = data_dir_ + "/serve.json";
  std::vector<std::string> argv = {KILN_EXE, "serve", "--data", data_dir_};
  // A restart test may pin the port (agents keep the server's URL).
  if (std::find(extra_args.begin(), extra_args.end(), "--listen") == extra_args.end())
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto p = Process::Start(argv);
  REQUIRE(p.ok());
  process_ = std::make_unique<Process>(std::move(*p));
  // serve.json appears once the server listens; a stale one names another pid.
  bool up = WaitUntil([&] {
    if (!process_->Running()) return true;
    auto text = ReadFile(info_path);
    if (!text.ok()) return false;
    auto j = ParseJson(*text);
    return j.ok() && j->value("pid", 0) == process_->pid();
  });
  INFO("kiln serve stderr:\n" << process_->Stderr());
  REQUIRE(up);
  REQUIRE(process_->Running());
  url_ = (*ParseJson(*ReadFile(info_path)))["url"];
}

KilnServer::~KilnServer() {
  if (process_ && process_->Running()) Stop();
}

std::string KilnServer::token() const {
  return std::string(Trim(ReadFile(data_dir_ + "/admin.token").value_or("")));
}

ApiClient KilnServer::Client() const {
  return ApiClient(ClientConfig{url_, token()});
}

RunResult KilnServer::Kiln(std::vector<std::string> args) const {
  std::vector<std::string> argv = {KILN_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {"KILN_SERVER=" + url_, "KILN_TOKEN=" + token()});
}

int KilnServer::Stop() {
  process_->Signal(SIGTERM);
  return process_->Wait(std::chrono::seconds(20));
}

}  // namespace kiln::test
