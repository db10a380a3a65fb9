// `kiln image capture | deploy | export | undo`: the commands that move
// trees. Capture runs here, in the CLI process: it scans and hashes locally,
// offers the manifest, and uploads only what the server lacks (the server
// verifies every object), as kiln-agent does for --from-host captures.
// Deploy streams from the server and applies with kiln_imager's Applier,
// the same code the agent runs.

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "common/strings.h"
#include "imager/apply.h"
#include "imager/export.h"
#include "imager/image_client.h"
#include "imager/image_store.h"
#include "imager/stat_cache.h"
#include "server/cli/image_cmd.h"
#include "server/cli/node_jobs_cmd.h"
#include "server/cli/progress_bar.h"

namespace kiln::cli {
namespace {

struct Flags {
  ClientFlags client;
  bool json = false;
  std::string ref;
  // capture
  std::string from_dir, from_tar, from_host, note, stat_cache;
  std::vector<std::string> excludes;
  bool no_stat_cache = false, cross_fs = false, no_devices = false;
  int threads = 2;
  // deploy / undo / export
  std::string to, from, undo_dir, out, root;
  bool undo = false, no_prune = false, sync = false, buffered = false;
};

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string Abs(const std::string& p) {
  std::error_code ec;
  return std::filesystem::absolute(p, ec).lexically_normal().string();
}

int Capture(const Flags& f) {
  const char* cmd = "image capture";
  int sources = !f.from_dir.empty() + !f.from_tar.empty() + !f.from_host.empty();
  if (sources != 1)
    return Fail(
        cmd,
        InvalidArgument("give exactly one of --from-dir DIR, --from-tar FILE or --from-host NODE"));
  if (auto s = imager::ValidateImageName(f.ref); !s.ok()) return Fail(cmd, s);
  if (!f.from_host.empty()) {
    // The host's agent walks its own tree and uploads what the server lacks.
    Json args = {{"image", f.ref},
                 {"note", f.note},
                 {"excludes", f.excludes},
                 {"cross_filesystems", f.cross_fs}};
    return RunHostJob(f.client, {f.from_host}, cmd, "capture", args, f.json, 3600);
  }
  ApiClient api(ResolveClientConfig(f.client));
  imager::CaptureOptions opts;
  opts.excludes = f.excludes;
  opts.one_file_system = !f.cross_fs;
  opts.allow_devices = !f.no_devices;
  opts.threads = f.threads;
  std::string source = f.from_dir.empty() ? "tar:" + Abs(f.from_tar) : "dir:" + Abs(f.from_dir);
  if (!f.from_dir.empty() && !f.no_stat_cache)
    opts.stat_cache =
        f.stat_cache.empty() ? imager::DefaultStatCachePath(f.from_dir) : f.stat_cache;
  ProgressBar bar("capture");
  opts.progress = [&](const imager::CaptureProgress& p) {
    bar.Update(p.bytes, p.bytes_total, p.files, p.files_total, p.phase);
  };
  imager::HttpCaptureTarget target(&api.http(), f.ref, f.note, source);
  auto start = std::chrono::steady_clock::now();
  auto r = f.from_dir.empty() ? imager::CaptureArchive(f.from_tar, opts, &target)
                              : imager::CaptureDirectory(f.from_dir, opts, &target);
  bar.Done();
  if (!r.ok()) return Fail(cmd, r.status());
  double secs = Since(start);
  if (f.json) {
    PrintJson({{"image", f.ref},
               {"version", r->version.version},
               {"manifest", r->manifest},
               {"entries", r->entries},
               {"files", r->files},
               {"files_hashed", r->files_hashed},
               {"bytes", r->bytes},
               {"objects", r->objects},
               {"objects_sent", r->objects_sent},
               {"bytes_sent", r->bytes_sent},
               {"one_exchange", r->one_exchange},
               {"streamed", r->streamed},
               {"seconds", secs},
               {"timings_ms",
                {{"scan", r->scan_ms},
                 {"offer", r->offer_ms},
                 {"upload", r->upload_ms},
                 {"commit", r->commit_ms}}}});
  } else {
    fmt::print(
        "{}@{}: {} entries, {} in {} files ({} hashed); sent {} of {} objects ({}) in {:.1f}s\n",
        f.ref, r->version.version, r->entries, HumanBytes(r->bytes), r->files, r->files_hashed,
        r->objects_sent, r->objects, HumanBytes(r->bytes_sent), secs);
    fmt::print("manifest {}\n", r->manifest);
  }
  return kExitOk;
}

int Deploy(const Flags& f) {
  const char* cmd = "image deploy";
  ApiClient api(ResolveClientConfig(f.client));
  auto [name, ver] = imager::SplitImageRef(f.ref);
  imager::DeployOptions opts;
  opts.image = name;
  opts.version = ver;
  opts.from = f.from;
  opts.apply.set_owner = ::geteuid() == 0;
  opts.apply.prune = !f.no_prune;
  opts.apply.allow_devices = !f.no_devices;
  opts.apply.sync = f.sync;
  opts.apply.direct_io = !f.buffered;
  std::string root = Abs(f.to);
  if (f.undo || !f.undo_dir.empty())
    opts.apply.undo_dir =
        f.undo_dir.empty() ? root + "/" + imager::kDefaultUndoName : Abs(f.undo_dir);
  ProgressBar bar("deploy");
  opts.progress = [&](const imager::DeployProgress& p) {
    bar.Update(p.stream_bytes, p.stream_total, p.entries, p.entries_total);
  };
  auto start = std::chrono::steady_clock::now();
  auto r = imager::DeployFromServer(&api.http(), root, opts);
  bar.Done();
  if (!r.ok()) return Fail(cmd, r.status());
  double secs = Since(start);
  int v = r->version.value("version", 0);
  if (f.json) {
    PrintJson({{"image", name},
               {"version", v},
               {"from", r->from},
               {"manifest", r->version.value("manifest", "")},
               {"root", root},
               {"entries", r->apply.entries},
               {"files", r->apply.files},
               {"attribute_only", r->apply.meta_only},
               {"deleted", r->apply.deleted},
               {"pruned", r->apply.pruned},
               {"bytes_written", r->apply.bytes_written},
               {"bytes_copied", r->apply.bytes_copied},
               {"bytes_direct", r->apply.bytes_direct},
               {"stream_bytes", r->stream_bytes},
               {"received_bytes", r->received_bytes},
               {"resumes", r->resumes},
               {"undo", opts.apply.undo_dir},
               {"seconds", secs}});
  } else {
    std::string kind = r->from ? fmt::format("delta from @{}", r->from) : "full";
    fmt::print(
        "{}@{} ({}) -> {}: {} entries, {} files, {} written, {} reused, {} deleted; {} received in "
        "{:.1f}s\n",
        name, v, kind, root, r->apply.entries, r->apply.files, HumanBytes(r->apply.bytes_written),
        HumanBytes(r->apply.bytes_copied), r->apply.deleted + r->apply.pruned,
        HumanBytes(r->received_bytes), secs);
    if (!opts.apply.undo_dir.empty())
      fmt::print("undo snapshot in {} (kiln image undo --root {})\n", opts.apply.undo_dir, root);
  }
  return kExitOk;
}

int Export(const Flags& f) {
  const char* cmd = "image export";
  ApiClient api(ResolveClientConfig(f.client));
  auto [name, ver] = imager::SplitImageRef(f.ref);
  auto v = imager::GetVersion(&api.http(), name, ver);
  if (!v.ok()) return Fail(cmd, v.status());
  int number = (*v)["version"].value("version", 0);
  std::string tmp = f.out == "-" ? f.out : f.out + ".part";
  auto sink = imager::ArchiveExportSink::Open(tmp, f.out);
  if (!sink.ok()) return Fail(cmd, sink.status());
  ProgressBar bar("export", f.out != "-" && ProgressBar::IsTerminal());
  auto start = std::chrono::steady_clock::now();
  uint64_t sockets = 0;
  auto run = imager::RunStream(
      &api.http(), fmt::format("/api/v1/images/{}/stream?version={}", UrlEncode(name), number),
      sink->get(), 8, 0, [&](uint64_t got, uint64_t total) { bar.Update(got, total, 0, 0); });
  bar.Done();
  sockets = (*sink)->skipped_sockets();
  sink->reset();
  if (!run.ok()) {
    if (tmp != "-") ::unlink(tmp.c_str());
    return Fail(cmd, run.status());
  }
  if (tmp != "-" && ::rename(tmp.c_str(), f.out.c_str()) != 0)
    return Fail(cmd, ErrnoError("rename to " + f.out, errno));
  if (f.json)
    PrintJson({{"image", name},
               {"version", number},
               {"out", f.out},
               {"skipped_sockets", sockets},
               {"seconds", Since(start)}});
  else if (f.out != "-")
    fmt::print("{}@{} -> {}\n", name, number, f.out);
  if (sockets && !f.json)
    fmt::print(stderr, "kiln image export: {} sockets left out (tar cannot hold them)\n", sockets);
  return kExitOk;
}

int Undo(const Flags& f) {
  std::string root = Abs(f.root);
  std::string dir = f.undo_dir.empty() ? root + "/" + imager::kDefaultUndoName : Abs(f.undo_dir);
  Status s = imager::RestoreUndo(root, dir, ::geteuid() == 0);
  if (!s.ok()) return Fail("image undo", s);
  if (f.json)
    PrintJson({{"root", root}, {"undo", dir}, {"restored", true}});
  else
    fmt::print("{}: restored from {}\n", root, dir);
  return kExitOk;
}

}  // namespace

void RegisterImageTransferCommands(CLI::App* image, CliState* state) {
  auto f = std::make_shared<Flags>();
  auto run = [state](std::function<int()> fn) { return [state, fn] { state->exit_code = fn(); }; };

  auto* cap = image->add_subcommand("capture", "Store a tree as the image's next version");
  AddClientOptions(cap, &f->client);
  cap->add_flag("--json", f->json, "print the result as JSON");
  cap->add_option("NAME", f->ref, "image name (created on first capture)")->required();
  cap->add_option("--from-dir", f->from_dir, "capture this directory");
  cap->add_option("--from-host", f->from_host,
                  "capture a running installed host: its agent walks its tree "
                  "(never /proc, /sys, /dev, /run, /tmp, other mounts, its token)");
  cap->add_option(
      "--from-tar", f->from_tar,
      "capture this tar or cpio archive (.tar, .tar.gz, .tar.zst, .tar.xz, .cpio; - for stdin)");
  cap->add_option(
      "--exclude", f->excludes,
      "skip paths matching GLOB (repeatable); with a '/' it matches from the root, else any name");
  cap->add_option("--note", f->note, "a note stored with the version");
  cap->add_option("--stat-cache", f->stat_cache,
                  "stat cache file (default: under ~/.cache/kiln/statcache)");
  cap->add_flag("--no-stat-cache", f->no_stat_cache, "hash every file again");
  cap->add_flag("--cross-filesystems", f->cross_fs, "descend into other mounted filesystems");
  cap->add_flag("--no-devices", f->no_devices, "refuse device nodes in the tree");
  cap->add_option("--threads", f->threads,
                  "threads that read and hash the tree, and compress a re-capture's upload")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cap->footer(
      "The tree is scanned and hashed here, and only the objects the server lacks are uploaded\n"
      "(and verified there). A first capture (empty stat cache) sends them while it reads the\n"
      "tree and the manifest last; a re-capture sends the manifest first, and unchanged files\n"
      "are not re-read thanks to the stat cache. Identical content always gives the same\n"
      "manifest digest. A capture that fails gives up what it had sent.\n\n"
      "Examples:\n  kiln image capture web --from-dir /srv/golden --exclude 'var/cache/*' --note "
      "'nginx 1.22'\n"
      "  kiln image capture base --from-tar rootfs.tar.zst\n"
      "  kiln image capture web --from-host web01 --exclude 'var/log/*'   (SystemImager's golden "
      "client)");
  cap->callback(run([f] { return Capture(*f); }));

  auto* dep = image->add_subcommand("deploy", "Write a version into a directory, exactly");
  AddClientOptions(dep, &f->client);
  dep->add_flag("--json", f->json, "print the result as JSON");
  dep->add_option("NAME[@V]", f->ref, "image and version (default: current)")->required();
  dep->add_option("--to", f->to, "target directory (created if missing)")->required();
  dep->add_option("--from", f->from, "DIR holds this version already: send only the difference");
  dep->add_flag("--undo", f->undo, "record an undo snapshot in DIR/.kiln-undo first");
  dep->add_option("--undo-dir", f->undo_dir,
                  "record the undo snapshot here (same filesystem as DIR)");
  dep->add_flag("--no-prune", f->no_prune, "keep files in DIR that the image does not have");
  dep->add_flag("--no-devices", f->no_devices, "refuse device nodes");
  dep->add_flag("--sync", f->sync, "flush the target filesystem before returning");
  dep->add_flag("--buffered", f->buffered,
                "write large files through the page cache too (by default a file of 8 MiB or "
                "more goes to the disk directly, O_DIRECT)");
  dep->footer(
      "Owners, modes, xattrs (capabilities, ACLs), mtimes, hard links and devices are set\n"
      "exactly; each file is written under a temporary name and renamed; every object is\n"
      "verified against its digest; nothing is written outside DIR. A full deploy removes what\n"
      "the image lacks (unless --no-prune); a delta (--from) changes only what differs.\n"
      "A broken connection resumes where it stopped.\n\n"
      "Examples:\n  kiln image deploy web@4 --to /mnt/target\n"
      "  kiln image deploy web@5 --to /mnt/target --from 4 --undo\n  kiln image undo --root "
      "/mnt/target");
  dep->callback(run([f] { return Deploy(*f); }));

  auto* exp = image->add_subcommand("export", "Write a version as an archive");
  AddClientOptions(exp, &f->client);
  exp->add_flag("--json", f->json, "print the result as JSON");
  exp->add_option("NAME[@V]", f->ref, "image and version (default: current)")->required();
  exp->add_option("--out", f->out, "FILE.tar.zst, .tar.gz, .tar.xz or .tar; - for stdout (zstd)")
      ->required();
  exp->footer(
      "Example:\n  kiln image export web@3 --out web-3.tar.zst\n  tar --xattrs -xpf web-3.tar.zst "
      "-C /mnt");
  exp->callback(run([f] { return Export(*f); }));

  auto* undo =
      image->add_subcommand("undo", "Restore a directory from the undo snapshot of a deploy");
  undo->add_flag("--json", f->json, "print the result as JSON");
  undo->add_option("--root", f->root, "the directory deployed to")->required();
  undo->add_option("--undo-dir", f->undo_dir, "where the snapshot is (default: ROOT/.kiln-undo)");
  undo->footer("Runs locally; needs no server.\n\nExample:\n  kiln image undo --root /mnt/target");
  undo->callback(run([f] { return Undo(*f); }));
}

}  // namespace kiln::cli
