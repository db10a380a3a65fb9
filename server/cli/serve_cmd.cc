#include "server/cli/serve_cmd.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <memory>

#include "common/log.h"
#include "server/cli/serve_boot_flags.h"
#include "server/coord/coord_store.h"
#include "server/http/listen_address.h"
#include "server/server.h"

namespace kiln::cli {
namespace {

struct ServeFlags {
  ServerOptions options;
  std::string log_level = "info";
};

// Every agent's long poll and every watch stream holds a socket, and a
// thousand machines need more than the 1,024 descriptors a process gets by
// default: the soft limit goes up to the hard one (as Go's runtime and
// nginx's worker_rlimit_nofile do), and the log says what it is.
void RaiseOpenFileLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  rlim_t was = r.rlim_cur;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) r.rlim_cur = was;
  }
  log::Info("serve", "open files", {{"limit", static_cast<uint64_t>(r.rlim_cur)}});
}

// Which malloc the process runs with: mimalloc when the build links it (or
// it is preloaded) and malloc reaches it (a block from malloc is in
// mimalloc's heap), else the C library's. Looked up rather than compiled
// in, so that the log says what actually runs.
void LogAllocator() {
  using InHeapFn = bool (*)(const void*);
  using VersionFn = int (*)();
  auto in_heap = reinterpret_cast<InHeapFn>(::dlsym(RTLD_DEFAULT, "mi_is_in_heap_region"));
  auto mi_version = reinterpret_cast<VersionFn>(::dlsym(RTLD_DEFAULT, "mi_version"));
  void* probe = std::malloc(64);
  bool mimalloc = in_heap != nullptr && mi_version != nullptr && in_heap(probe);
  std::free(probe);
  if (!mimalloc) {
    log::Info("serve", "allocator", {{"name", "libc"}});
    return;
  }
  int v = mi_version();  // e.g. 209 for 2.0.9
  log::Info(
      "serve", "allocator",
      {{"name", "mimalloc"}, {"version", fmt::format("{}.{}.{}", v / 100, v / 10 % 10, v % 10)}});
}

// Startup failures exit 1; usage errors 2 (as for every command).
int FailServe(const Status& s) {
  int code = Fail("serve", s);
  return code == kExitUsage ? kExitUsage : kExitFailed;
}

int RunServe(const ServeFlags& flags) {
  log::Level level;
  if (!log::ParseLevel(flags.log_level, &level))
    return FailServe(InvalidArgument("--log-level must be debug, info, warn or error"));
  log::SetLevel(level);
  // Check flags before touching the data directory.
  if (auto addr = http::ParseListenAddress(flags.options.listen); !addr.ok())
    return FailServe(addr.status().WithContext("--listen"));
  if (!flags.options.coord_url.empty())
    if (auto url = coord::ParseCoordUrl(flags.options.coord_url); !url.ok())
      return FailServe(url.status().WithContext("--coord"));
  RaiseOpenFileLimit();
  LogAllocator();

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only this one receives them, in sigtimedwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = Server::Start(flags.options);
  if (!server.ok()) return FailServe(server.status());

  for (;;) {
    timespec tick{1, 0};
    int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      log::Info("serve", "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      break;
    }
  }
  (*server)->Stop();
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, CliState* state) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the kiln server in the foreground");
  cmd->add_option("--data", flags->options.data_dir,
                  "data directory: coordination store, images, tokens; created on first start "
                  "with an admin token in DIR/admin.token (mode 0600)")
      ->capture_default_str();
  cmd->add_option("--listen", flags->options.listen,
                  "HTTP API address, HOST:PORT; port 0 picks a free port (see DIR/serve.json)")
      ->capture_default_str();
  cmd->add_option("--coord", flags->options.coord_url,
                  "coordination store: embedded:DIR or zk://host:port[,host:port]/chroot "
                  "(default: embedded in DATA/coord)");
  cmd->add_option("--http-threads", flags->options.http_threads,
                  "HTTP event loops, each serving many connections (default: two per CPU "
                  "kiln may run on, at most 64)")
      ->check(CLI::Range(1, 64));
  cmd->add_option(
      "--space", flags->options.space_dir,
      "config space directory (classes, rules, variables, files, disk layouts); reloaded "
      "when it changes, a broken edit keeps the last good version");
  cmd->add_option("--space-poll", flags->options.space_poll_ms,
                  "how often to look for edits in the config space, in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(50, 3600000));
  cmd->add_option("--log-level", flags->log_level, "debug, info, warn or error")
      ->capture_default_str();
  AddBootFlags(cmd, &flags->options.boot);
  cmd->footer(
      "Logs go to stderr, one logfmt line per event. SIGTERM or SIGINT stops the server.\n"
      "Only one server may use a data directory at a time.\n\n"
      "Examples:\n  kiln serve --data /var/lib/kiln --listen 0.0.0.0:7070 --space /etc/kiln/space\n"
      "  kiln serve --interface eth1                      # proxy-DHCP beside the site's DHCP\n"
      "  kiln serve --interface br0 --dhcp full --dhcp-range 10.0.0.100,10.0.0.200\n"
      "  kiln serve --tftp 127.0.0.1:6969                 # TFTP only, no DHCP");
  cmd->callback([flags, state] { state->exit_code = RunServe(*flags); });
}

}  // namespace kiln::cli
