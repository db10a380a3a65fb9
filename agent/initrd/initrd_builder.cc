#include "agent/initrd/initrd_builder.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <set>

#include "agent/initrd/grub_image.h"
#include "agent/initrd/init_script.h"
#include "agent/initrd/module_deps.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"

namespace kiln::initrd {
namespace fs = std::filesystem;

namespace {

// Host tools the agent runs, with the names they are called by.
struct Tool {
  const char* host;
  std::vector<const char*> links;  // extra names in the same directory
  bool optional = false;           // left out when the host lacks it
};

const std::vector<Tool>& Tools() {
  static const std::vector<Tool> tools = {
      {"/usr/sbin/sfdisk", {}},
      {"/usr/sbin/mke2fs", {"mkfs.ext4", "mkfs.ext3", "mkfs.ext2"}},
      {"/usr/sbin/mkfs.fat", {"mkfs.vfat"}},
      {"/usr/bin/extlinux", {}},
      {"/usr/bin/partx", {}},
      // busybox has no blkid; the agent reads filesystem UUIDs for fstab
      // and the boot loader with the real one.
      {"/usr/sbin/blkid", {}},
      {"/usr/sbin/mkfs.xfs", {}, true},
      {"/usr/sbin/mkfs.btrfs", {}, true},
      // Writes the ESP of a UEFI install when the plan does not mount it.
      {"/usr/bin/mtools", {"mcopy", "mmd"}, true},
  };
  return tools;
}

const std::vector<std::pair<const char*, const char*>>& DataFiles() {
  static const std::vector<std::pair<const char*, const char*>> files = {
      {"/etc/mke2fs.conf", "/etc/mke2fs.conf"},
      {"/usr/lib/EXTLINUX/mbr.bin", "/usr/lib/EXTLINUX/mbr.bin"},
      {"/usr/lib/EXTLINUX/gptmbr.bin", "/usr/lib/EXTLINUX/gptmbr.bin"},
  };
  return files;
}

// Collects entries, adds parent directories and writes them sorted, so
// every parent precedes its children in the archive.
class Tree {
 public:
  enum class Kind { kDir, kFile, kData, kLink };
  struct Entry {
    Kind kind;
    std::string source;  // host path, data, or link target
    mode_t mode;
  };

  void Dir(const std::string& p, mode_t mode = 0755) { Put(p, {Kind::kDir, "", mode}); }
  void File(const std::string& p, const std::string& host, mode_t mode = 0) {
    Put(p, {Kind::kFile, host, mode});
  }
  void Data(const std::string& p, std::string data, mode_t mode) {
    Put(p, {Kind::kData, std::move(data), mode});
  }
  void Link(const std::string& p, const std::string& target) { Put(p, {Kind::kLink, target, 0}); }
  bool Has(const std::string& p) const { return entries_.count(p) > 0; }
  void Remove(const std::string& p) { entries_.erase(p); }

  Status Write(CpioWriter& w) const {
    for (const auto& [path, e] : entries_) {
      switch (e.kind) {
        case Kind::kDir: KILN_RETURN_IF_ERROR(w.AddDirectory(path, e.mode)); break;
        case Kind::kFile: KILN_RETURN_IF_ERROR(w.AddFile(path, e.source, e.mode)); break;
        case Kind::kData: KILN_RETURN_IF_ERROR(w.AddData(path, e.source, e.mode)); break;
        case Kind::kLink: KILN_RETURN_IF_ERROR(w.AddSymlink(path, e.source)); break;
      }
    }
    return Status::Ok();
  }

 private:
  void Put(const std::string& p, Entry e) {
    fs::path parent = fs::path(p).parent_path();
    while (!parent.empty() && parent != "/") {
      entries_.try_emplace(parent.string(), Entry{Kind::kDir, "", 0755});
      parent = parent.parent_path();
    }
    entries_[p] = std::move(e);
  }
  std::map<std::string, Entry> entries_;
};

Result<std::string> ModulesDir(const InitrdSpec& spec) {
  std::string a = spec.modules + "/lib/modules/" + spec.kernel_version;
  if (fs::exists(a + "/modules.dep")) return a;
  if (fs::exists(spec.modules + "/modules.dep")) return spec.modules;
  return NotFound(
      fmt::format("--modules {}: no modules.dep in {} or in {} (unpack the kernel package and run "
                  "depmod -b ROOT {})",
                  spec.modules, a, spec.modules, spec.kernel_version));
}

Status AddBinary(Tree& tree, const std::string& host, const std::string& at,
                 std::set<std::string>* libs, InitrdReport* report) {
  if (::access(host.c_str(), X_OK) != 0)
    return NotFound(fmt::format("{} is missing (scripts/bootstrap installs it)", host));
  tree.File(at, host, 0755);
  report->binaries.push_back(host);
  KILN_ASSIGN_OR_RETURN(auto needed, SharedLibraries(host));
  for (auto& l : needed) libs->insert(std::move(l));
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& DefaultModules() {
  static const std::vector<std::string> mods = {
      // virtual machines
      "virtio_pci",
      "virtio_net",
      "virtio_blk",
      "virtio_scsi",
      // common NICs
      "e1000",
      "e1000e",
      "igb",
      "ixgbe",
      "i40e",
      "r8169",
      "tg3",
      "bnx2",
      "bnxt_en",
      "mlx4_en",
      "mlx5_core",
      "vmxnet3",
      // disks
      "ahci",
      "ata_piix",
      "nvme",
      "sd_mod",
      "sr_mod",
      "mptsas",
      "megaraid_sas",
      // filesystems the agent makes
      "crc32c_intel",
      "crc32c_generic",
      "ext4",
      "vfat",
      // Debian's kernel mounts FAT with iocharset=ascii by default: without
      // nls_ascii an ESP does not mount ("IO charset ascii not found").
      "nls_ascii",
      "nls_cp437",
      "nls_iso8859_1",
      "nls_utf8",
  };
  return mods;
}

Result<std::vector<std::string>> SharedLibraries(const std::string& binary) {
  KILN_ASSIGN_OR_RETURN(auto r, RunSubprocess({"ldd", binary}));
  std::vector<std::string> libs;
  if (r.exit_code != 0) {
    // ldd says so for static executables; anything else is an error.
    if ((r.out + r.err).find("not a dynamic executable") != std::string::npos) return libs;
    return Internal(DescribeFailure({"ldd", binary}, r));
  }
  for (const auto& raw : Split(r.out, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    if (line.find("not found") != std::string_view::npos)
      return NotFound(fmt::format("{} needs a library that is missing: {}", binary, line));
    std::string_view path;
    size_t arrow = line.find("=> ");
    if (arrow != std::string_view::npos) {
      path = line.substr(arrow + 3);
    } else if (!line.empty() && line.front() == '/') {
      path = line;  // the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
    } else {
      continue;  // linux-vdso.so.1
    }
    path = path.substr(0, path.find(' '));
    if (!path.empty() && path.front() == '/') libs.emplace_back(path);
  }
  return libs;
}

Result<InitrdReport> BuildInitrd(const InitrdSpec& spec,
                                 const std::function<void(std::string_view)>& progress) {
  auto say = [&](std::string_view s) {
    if (progress) progress(s);
  };
  if (spec.kernel_version.empty()) return InvalidArgument("--kernel-version is required");
  if (spec.out.empty()) return InvalidArgument("--out is required");
  if (spec.agent_binary.empty()) return InvalidArgument("no kiln-agent binary given (--agent)");

  InitrdReport report;
  Tree tree;
  for (const char* d : {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc", "/proc", "/sys", "/dev",
                        "/run", "/tmp", "/mnt", "/root", "/var", "/var/log", "/target"})
    tree.Dir(d);
  tree.Dir("/tmp", 01777);

  // busybox and every applet it has, as links.
  std::string busybox = "/bin/busybox";
  KILN_ASSIGN_OR_RETURN(auto bb_libs, SharedLibraries(busybox));
  if (!bb_libs.empty())
    return FailedPrecondition("/bin/busybox is not static (install busybox-static)");
  tree.File("/bin/busybox", busybox, 0755);
  report.binaries.push_back(busybox);
  KILN_ASSIGN_OR_RETURN(auto applets, RunSubprocess({busybox, "--list-full"}));
  if (applets.exit_code != 0) return Internal(DescribeFailure({busybox, "--list-full"}, applets));
  int n_applets = 0;
  for (const auto& a : Split(applets.out, '\n')) {
    std::string p(Trim(a));
    if (p.empty() || p == "bin/busybox") continue;
    tree.Link("/" + p, "/bin/busybox");
    ++n_applets;
  }
  say(fmt::format("busybox with {} applets", n_applets));

  // Disk tools and the agent, with their libraries. Real tools replace
  // busybox's applets of the same name (busybox has no sfdisk, and its
  // mke2fs only makes ext2).
  std::set<std::string> libs;
  for (const auto& t : Tools()) {
    if (t.optional && ::access(t.host, X_OK) != 0) continue;
    std::string at = t.host;
    std::vector<std::string> names = {fs::path(at).filename().string()};
    for (const char* link : t.links) names.emplace_back(link);
    for (const auto& name : names)
      for (const char* dir : {"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"})
        tree.Remove(dir + name);
    KILN_RETURN_IF_ERROR(AddBinary(tree, t.host, at, &libs, &report));
    for (size_t i = 1; i < names.size(); ++i)
      tree.Link((fs::path(at).parent_path() / names[i]).string(), names[0]);
    // Also under /sbin, where scripts written for older layouts look.
    for (const auto& name : names) tree.Link("/sbin/" + name, at);
  }
  KILN_RETURN_IF_ERROR(AddBinary(tree, spec.agent_binary, "/usr/bin/kiln-agent", &libs, &report));
  for (const auto& [host, at] : DataFiles()) {
    if (!fs::exists(host)) return NotFound(fmt::format("{} is missing", host));
    tree.File(at, host);
  }
  if (spec.uefi) {
    KILN_ASSIGN_OR_RETURN(std::string grub,
                          BuildGrubEfiImage(spec.grub_dir, spec.out + ".grubx64.efi.tmp"));
    say(fmt::format("GRUB EFI image ({} bytes) for UEFI installs", grub.size()));
    tree.Data(kGrubEfiImagePath, std::move(grub), 0644);
  }
  for (const auto& f : spec.extra_files) {
    if (!fs::exists(f)) return NotFound(fmt::format("--file {}: no such file", f));
    tree.File(f, f);
  }
  for (const auto& l : libs) {
    // Copy the library's real bytes under the path the loader looks for.
    tree.File(l, l, 0755);
    report.libraries.push_back(l);
  }
  say(fmt::format("{} tools and {} shared libraries", report.binaries.size(), libs.size()));

  // Kernel modules.
  KILN_ASSIGN_OR_RETURN(std::string mod_dir, ModulesDir(spec));
  KILN_ASSIGN_OR_RETURN(ModuleIndex index, ModuleIndex::Load(mod_dir));
  KILN_ASSIGN_OR_RETURN(auto mods, index.Resolve(DefaultModules(), /*optional=*/true));
  if (!spec.extra_modules.empty()) {
    KILN_ASSIGN_OR_RETURN(auto extra, index.Resolve(spec.extra_modules, /*optional=*/false));
    std::set<std::string> have(mods.begin(), mods.end());
    for (auto& m : extra)
      if (have.insert(m).second) mods.push_back(m);
  }
  std::string mod_list;
  std::string kroot = "/lib/modules/" + spec.kernel_version;
  std::set<std::string> carried;
  for (const auto& m : mods) {
    tree.File(kroot + "/" + m, mod_dir + "/" + m, 0644);
    mod_list += m + "\n";
    carried.insert(ModuleName(m));
  }
  // The names asked for: `kiln-agent load-modules` inserts these (drivers
  // only for present devices) and the rest only as their dependencies.
  std::string roots;
  for (const auto& n : DefaultModules())
    if (index.Has(n)) roots += ModuleName(n) + "\n";
  for (const auto& n : spec.extra_modules) roots += ModuleName(n) + "\n";
  tree.Data("/etc/kiln/module-roots", roots, 0644);
  for (const char* f : {"modules.dep", "modules.builtin", "modules.order"})
    if (fs::exists(mod_dir + "/" + f)) tree.File(kroot + "/" + f, mod_dir + "/" + f, 0644);
  // modules.alias for the modules carried only: the kernel's whole file is
  // over a megabyte, read at every boot.
  if (fs::exists(mod_dir + "/modules.alias")) {
    KILN_ASSIGN_OR_RETURN(std::string all, ReadFile(mod_dir + "/modules.alias"));
    std::string kept;
    for (const auto& line : Split(all, '\n')) {
      size_t name_at = line.rfind(' ');
      if (line.rfind("alias ", 0) == 0 && name_at != std::string::npos &&
          carried.count(ModuleName(std::string_view(line).substr(name_at + 1))))
        kept += line + "\n";
    }
    tree.Data(kroot + "/modules.alias", kept, 0644);
  }
  report.modules = mods;
  say(fmt::format("{} kernel modules for {}", mods.size(), spec.kernel_version));

  tree.Data("/etc/kiln/modules", mod_list, 0644);
  tree.Data("/etc/kiln/udhcpc.sh", UdhcpcScript(), 0755);
  tree.Data("/init", InitScript(), 0755);
  tree.Data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644);
  tree.Data("/etc/group", "root:x:0:\n", 0644);
  tree.Data("/etc/hostname", "kiln-install\n", 0644);
  tree.Data("/etc/kiln/version", spec.kernel_version + "\n", 0644);

  KILN_ASSIGN_OR_RETURN(auto writer, CpioWriter::Create(spec.out, spec.compression));
  KILN_RETURN_IF_ERROR(tree.Write(*writer));
  KILN_RETURN_IF_ERROR(writer->Finish());
  report.entries = writer->entries();
  struct stat st {};
  if (::stat(spec.out.c_str(), &st) == 0) report.bytes = static_cast<uint64_t>(st.st_size);
  return report;
}

}  // namespace kiln::initrd
