#include "server/cli/pxe_cmd.h"

#include <dirent.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <set>

#include "common/file_util.h"
#include "common/strings.h"
#include "pxe/boot_tree.h"
#include "pxe/export.h"
#include "pxe/tftp_path.h"

namespace kiln::cli {
namespace {

struct PxeFlags {
  ClientFlags client;
  std::string dir;
  std::string url;
  bool json = false;
};

// Files under dir/sub, relative to dir.
void ListFiles(const std::string& dir, const std::string& sub, std::vector<std::string>* out) {
  DIR* d = ::opendir((dir + "/" + sub).c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string rel = sub.empty() ? name : sub + "/" + name;
    if (e->d_type == DT_DIR)
      ListFiles(dir, rel, out);
    else
      out->push_back(rel);
  }
  ::closedir(d);
}

// Downloads a boot-tree file from the server into dest, atomically.
Status Download(ApiClient& api, const std::string& rel, const std::string& dest) {
  std::string tmp = dest + ".kiln-tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return ErrnoError("open " + tmp, errno);
  bool write_failed = false;
  auto r = api.http().Stream("/boot/files/" + rel,
                             [&](std::string_view chunk) {
                               write_failed = std::fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size();
                               return !write_failed;
                             },
                             {.timeout = std::chrono::milliseconds(0)});
  bool close_ok = std::fclose(f) == 0;
  if (!r.ok() || r->status != 200 || write_failed || !close_ok) {
    ::unlink(tmp.c_str());
    if (!r.ok()) return r.status();
    if (r->status != 200) return StatusFromErrorJson(r->body, r->status);
    return IoError("write " + dest);
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) return ErrnoError("rename " + dest, errno);
  return Status::Ok();
}

int RunExport(const PxeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  std::string query = "/api/v1/pxe/export?url=" + UrlEncode(f.url.empty() ? api.config().server : f.url);
  auto r = api.Get(query);
  if (!r.ok()) return Fail("pxe export", r.status());

  // The boot loaders, from this machine's Debian packages.
  auto loaders = pxe::InstallStaticBootFiles(f.dir);
  if (!loaders.ok()) return Fail("pxe export", loaders.status());
  std::string missing = pxe::MissingRequired(*loaders);
  if (!missing.empty())
    return Fail("pxe export", FailedPrecondition("boot loaders missing here: " + missing +
                                                 " (apt-get install them, then export again)"));

  // The per-machine configs; drop those of nodes that are gone.
  std::set<std::string> wanted;
  for (const auto& [path, text] : (*r)["files"].items()) {
    auto norm = pxe::NormalizeTftpPath(path);
    if (!norm.ok() || *norm != path || !pxe::IsExportedConfig(path))
      return Fail("pxe export", Corruption("server sent an unexpected file name: " + path));
    std::string dest = f.dir + "/" + path;
    Status s = MakeDirs(dest.substr(0, dest.rfind('/')));
    if (s.ok()) s = WriteFileAtomic(dest, text.get<std::string>(), 0644);
    if (!s.ok()) return Fail("pxe export", s);
    wanted.insert(path);
  }
  std::vector<std::string> existing;
  ListFiles(f.dir, "", &existing);
  int removed = 0;
  for (const auto& rel : existing)
    if (pxe::IsExportedConfig(rel) && !wanted.count(rel) && ::unlink((f.dir + "/" + rel).c_str()) == 0)
      ++removed;

  // The install environment, from the server.
  Json absent = Json::array();
  for (const char* key : {"kernel", "initrd"}) {
    std::string rel = (*r)[key];
    std::string dest = f.dir + "/" + rel;
    Status s = MakeDirs(dest.substr(0, dest.rfind('/')));
    if (s.ok()) s = Download(api, rel, dest);
    if (!s.ok()) {
      if (s.code() != Code::kNotFound) return Fail("pxe export", s.WithContext(rel));
      absent.push_back(rel);
      if (!f.json)
        fmt::print(stderr, "kiln pxe export: warning: the server has no {} yet (kiln initrd build "
                   "--out DATA/boot/{}); installs will fail until it does\n", rel, rel);
    }
  }
  if (f.json) {
    PrintJson({{"dir", f.dir}, {"configs", wanted.size()}, {"removed", removed},
               {"server_url", (*r)["server_url"]}, {"missing", absent}});
  } else {
    fmt::print("exported {} boot configs to {} ({} stale removed); machines reach kiln at {}\n",
               wanted.size(), f.dir, removed, (*r)["server_url"].get<std::string>());
    fmt::print("serve it with: in.tftpd --listen --secure {}\n", f.dir);
  }
  return kExitOk;
}

}  // namespace

void RegisterPxeCommand(CLI::App& app, CliState* state) {
  auto f = std::make_shared<PxeFlags>();
  CLI::App* pxe = app.add_subcommand("pxe", "Network boot tools");
  pxe->require_subcommand(1);
  CLI::App* ex = pxe->add_subcommand(
      "export", "Write the boot tree (loaders, install environment, per-machine configs) for a "
                "tftpd-hpa server");
  AddClientOptions(ex, &f->client);
  ex->add_option("dir", f->dir, "the TFTP root to write (created if missing)")->required();
  ex->add_option("--url", f->url,
                 "the URL machines use to reach kiln's HTTP API (default: the server's "
                 "--advertise-url, else --server)");
  ex->add_flag("--json", f->json, "print a JSON summary");
  ex->footer(
      "The files are those kiln's own TFTP server renders per request. A static server cannot\n"
      "discover: unknown MACs get pxelinux.cfg/default (their local disk). Enrollment tokens\n"
      "work once: export again after machines enrolled (e.g. from cron).\n\n"
      "Example:\n  kiln pxe export /srv/tftp --url http://10.0.0.1:7070");
  ex->callback([f, state] { state->exit_code = RunExport(*f); });
}

}  // namespace kiln::cli
