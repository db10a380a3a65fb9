#include "agent/install_cmd.h"

#include <fmt/format.h>
#include <unistd.h>

#include "agent/agent_api.h"
#include "agent/facts.h"
#include "agent/installer.h"
#include "agent/kexec.h"

namespace kiln::agent {
namespace {

struct Flags {
  std::string server, token, node_token, node, target, facts_file,
      state_dir = "/var/lib/kiln-agent";
  std::string log_path = "/tmp/kiln-install.log";
  std::string interface;
  std::string grub_efi;  // empty: the install environment's
  bool no_reboot = false, json = false;
  int session_timeout_ms = 15000;
};

void AddConnectionFlags(CLI::App* c, Flags* f) {
  c->add_option("--server", f->server,
                "the kiln server's URL (kiln.server= on the kernel command line)")
      ->envname("KILN_SERVER")
      ->required();
  c->add_option("--token", f->token,
                "the one-time enrollment token (kiln.token=), traded for this node's own token");
  c->add_option("--node-token", f->node_token,
                "use this node token (or an admin token) instead of enrolling");
  c->add_option("--node", f->node, "the node's id (kiln.node=); required with --node-token");
  c->add_option("--interface", f->interface,
                "the boot interface (the install environment passes it)");
  c->add_option("--facts", f->facts_file,
                "report facts from FILE instead of /sys and /proc (tests)");
  c->add_option("--state", f->state_dir, "where progress is queued while the server is unreachable")
      ->capture_default_str();
}

int Fail(const std::string& cmd, const Status& s) {
  fmt::print(stderr, "kiln-agent {}: {}\n", cmd, s.message());
  return 1;
}

// Enrolls (or takes --node-token) and reads the facts.
Status Prepare(const std::string& cmd, Flags* f, Json* facts) {
  if (!f->facts_file.empty()) {
    auto loaded = LoadFactsFile(f->facts_file);
    if (!loaded.ok()) return loaded.status();
    *facts = *loaded;
  } else {
    *facts = CollectFacts();
  }
  if (!f->node_token.empty()) {
    if (f->node.empty()) return InvalidArgument("--node-token needs --node");
    return Status::Ok();
  }
  if (f->token.empty())
    return InvalidArgument(
        "give --token (the enrollment token from the kernel command line) or --node-token");
  auto e = AgentApi::Enroll(f->server, f->token);
  if (!e.ok()) return e.status().WithContext("enrolling at " + f->server);
  if (!f->node.empty() && f->node != e->node)
    return FailedPrecondition(fmt::format("the token enrolls node {}, not {}", e->node, f->node));
  f->node = e->node;
  f->node_token = e->token;
  (void)cmd;
  return Status::Ok();
}

void PrintEvent(const ProgressEvent& e, bool json) {
  if (json) {
    fmt::print("{}\n", e.ToJson().dump());
    std::fflush(stdout);
    return;
  }
  switch (e.kind) {
    case ProgressEvent::Kind::kPhase: fmt::print(stderr, "==> {}: {}\n", e.phase, e.message); break;
    case ProgressEvent::Kind::kProgress:
      if (e.total > 0)
        fmt::print(stderr, "    {} {:.0f}% ({}/{})\n", e.step,
                   100.0 * double(e.done) / double(e.total), e.done, e.total);
      break;
    case ProgressEvent::Kind::kLog:
      fmt::print(stderr, "    {}{}\n", e.level == "info" ? "" : e.level + ": ", e.message);
      break;
    case ProgressEvent::Kind::kResult:
      fmt::print(stderr, "==> {}: {}\n", e.ok ? "done" : "FAILED", e.message);
      break;
  }
}

int RunInstallCmd(const std::string& cmd, Flags f, bool disks) {
  Json facts;
  Status s = Prepare(cmd, &f, &facts);
  if (!s.ok()) return Fail(cmd, s);
  RealCommandRunner runner;
  InstallOptions o;
  o.server = f.server;
  o.node_token = f.node_token;
  o.node = f.node;
  o.target = f.target;
  o.disks = disks;
  o.facts = facts;
  o.state_dir = f.state_dir;
  o.log_path = f.log_path;
  if (!f.grub_efi.empty()) o.grub_efi_image = f.grub_efi;
  o.session_timeout = std::chrono::milliseconds(f.session_timeout_ms);
  o.runner = &runner;
  bool json = f.json;
  o.on_event = [json](const ProgressEvent& e) { PrintEvent(e, json); };
  auto r = RunInstall(o);
  if (!r.ok()) return Fail(cmd, r.status());
  if (disks && !f.no_reboot) {
    if (r->kexec_loaded) {
      fmt::print(stderr, "kiln-agent: starting the installed system by kexec\n");
      Status k = KexecReboot();
      fmt::print(stderr, "kiln-agent: {}; rebooting through the firmware\n", k.message());
    } else {
      fmt::print(stderr, "kiln-agent: rebooting into the installed system\n");
    }
    ::sync();
    (void)runner.Run({"reboot", "-f"}, {});
  }
  return 0;
}

}  // namespace

void RegisterInstallCommands(CLI::App& app, int* exit_code) {
  static Flags install_flags, dir_flags, discover_flags;

  CLI::App* install = app.add_subcommand(
      "install", "Install this machine from its plan (partition, image, boot loader)");
  AddConnectionFlags(install, &install_flags);
  install_flags.target = "/target";
  install
      ->add_option("--target", install_flags.target,
                   "where the new system is mounted while it is built")
      ->capture_default_str();
  install->add_option("--grub-efi", install_flags.grub_efi,
                      "the GRUB EFI image UEFI machines get (default: the install "
                      "environment's /usr/lib/kiln/grubx64.efi)");
  install->add_flag("--no-reboot", install_flags.no_reboot, "stay up after a successful install");
  install->add_flag("--json", install_flags.json, "print each progress event as a JSON line");
  install->add_option("--log", install_flags.log_path, "the local install log")
      ->capture_default_str();
  install
      ->add_option("--session-timeout-ms", install_flags.session_timeout_ms,
                   "the server marks the node lost when heartbeats stop for this long")
      ->capture_default_str();
  install->footer(
      "ERASES the disks the plan names. Normally started by the install environment's /init:\n"
      "  kiln-agent install --server http://10.0.0.1:8080 --token 3f2a...\n"
      "Follow it with `kiln watch` on the server. Docs: docs/AGENT.md.");
  install->callback([exit_code] { *exit_code = RunInstallCmd("install", install_flags, true); });

  CLI::App* dir = app.add_subcommand(
      "dirinstall", "Install a node's plan into a directory (no disks, no boot loader)");
  AddConnectionFlags(dir, &dir_flags);
  dir->add_option("--root,--target", dir_flags.target, "the directory to install into")->required();
  dir->add_flag("--json", dir_flags.json, "print each progress event as a JSON line");
  dir->add_option("--log", dir_flags.log_path, "the local install log")->capture_default_str();
  dir->add_option("--session-timeout-ms", dir_flags.session_timeout_ms,
                  "the server marks the node lost when heartbeats stop for this long")
      ->capture_default_str();
  dir->footer(
      "Everything install does except the disks and the boot loader, like FAI's dirinstall:\n"
      "  kiln-agent dirinstall --server URL --node-token $(cat DATA/admin.token) --node web01 \\\n"
      "      --facts examples/facts/web01.json --root /srv/chroots/web01");
  dir->callback([exit_code] { *exit_code = RunInstallCmd("dirinstall", dir_flags, false); });

  CLI::App* discover =
      app.add_subcommand("discover", "Report this machine's facts so it appears in `kiln node ls`");
  AddConnectionFlags(discover, &discover_flags);
  discover->footer(
      "An unknown machine that PXE-boots is booted in discover mode; this registers what it is.");
  discover->callback([exit_code] {
    Flags f = discover_flags;
    Json facts;
    Status s = Prepare("discover", &f, &facts);
    if (s.ok()) s = AgentApi(f.server, f.node_token).PutFacts(f.node, facts);
    if (!s.ok()) {
      *exit_code = Fail("discover", s);
      return;
    }
    fmt::print("registered as node {}\n", f.node);
    *exit_code = 0;
  });
}

}  // namespace kiln::agent
