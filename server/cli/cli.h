#pragma once
// What every `kiln` subcommand shares: where the server is, which token to
// use, --json, how errors are printed and which exit code they give.
//
// Exit codes (stable, for scripts):
//   0 success   1 the operation failed   2 bad usage
//   3 the server could not be reached   4 not found

#include <CLI/CLI.hpp>
#include <string>

#include "common/api_client.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitNotFound = 4;

// Shared by every subcommand's callback; main returns exit_code.
struct CliState {
  int exit_code = kExitOk;
  // `kiln node run HOSTS -- WORDS...`: the words after "--", joined with
  // spaces as ssh joins them (SplitTrailingCommand).
  std::string trailing_command;
  bool has_trailing_command = false;
};

// Takes "-- WORDS..." off the end of `kiln node run` into state (argc
// shrinks), so that CLI11 sees only the hosts and flags.
void SplitTrailingCommand(int* argc, char** argv, CliState* state);

// Adds --server, --token and --data to a client command.
void AddClientOptions(CLI::App* cmd, ClientFlags* flags);

// Prints "kiln <command>: <message>" on stderr and returns the exit code for
// the status' code.
int Fail(std::string_view command, const Status& s);

int ExitCodeFor(const Status& s);

// Pretty JSON on stdout (for --json).
void PrintJson(const Json& j);

// Handles a CLI11 parse error: help goes to stdout with exit 0; anything
// else is one line on stderr and exit 2.
int HandleParseError(const CLI::App& app, const CLI::ParseError& e);

}  // namespace kiln::cli
