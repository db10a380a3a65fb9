#include "server/cli/cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <string_view>

namespace kiln::cli {

void AddClientOptions(CLI::App* cmd, ClientFlags* flags) {
  cmd->add_option("--server", flags->server,
                  "server URL (default: $KILN_SERVER, the URL recorded in --data, or "
                  "http://127.0.0.1:7070)");
  cmd->add_option("--token", flags->token,
                  "API token (default: $KILN_TOKEN, else the admin token in the data directory)");
  cmd->add_option("--data", flags->data_dir,
                  "server data directory to read the token and URL from (default: $KILN_DATA, "
                  "/var/lib/kiln)");
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk: return kExitOk;
    case Code::kUnavailable:
    case Code::kTimeout: return kExitUnreachable;
    case Code::kNotFound: return kExitNotFound;
    case Code::kInvalidArgument: return kExitUsage;
    default: return kExitFailed;
  }
}

int Fail(std::string_view command, const Status& s) {
  std::string msg = s.message();
  if (s.code() == Code::kUnavailable && msg.find("connect") != std::string::npos)
    msg += " (is `kiln serve` running? set --server or KILN_SERVER)";
  if (s.code() == Code::kUnauthenticated) msg += " (pass --token, set KILN_TOKEN, or --data DIR)";
  fmt::print(stderr, "kiln {}: {}\n", command, msg);
  return ExitCodeFor(s);
}

void PrintJson(const Json& j) {
  fmt::print("{}\n", j.dump(2));
}

int HandleParseError(const CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::CallForHelp*>(&e) || dynamic_cast<const CLI::CallForAllHelp*>(&e) ||
      dynamic_cast<const CLI::CallForVersion*>(&e)) {
    return app.exit(e);
  }
  std::string what = e.what();
  for (char& c : what)
    if (c == '\n') c = ' ';
  fmt::print(stderr, "kiln: {} (see kiln --help)\n", what);
  return kExitUsage;
}

void SplitTrailingCommand(int* argc, char** argv, CliState* state) {
  if (*argc < 3 || std::string_view(argv[1]) != "node" || std::string_view(argv[2]) != "run")
    return;
  for (int i = 3; i < *argc; ++i) {
    if (std::string_view(argv[i]) != "--") continue;
    state->has_trailing_command = true;
    for (int j = i + 1; j < *argc; ++j)
      state->trailing_command += (j > i + 1 ? " " : "") + std::string(argv[j]);
    *argc = i;
    return;
  }
}

}  // namespace kiln::cli
