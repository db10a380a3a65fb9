#include "agent/disk_plan.h"

#include <fmt/format.h>

#include "common/strings.h"

namespace kiln::agent {
namespace {

// Reads j[key] as T, naming the JSON path on error.
template <typename T>
Status Read(const Json& j, const std::string& at, const char* key, T* out, bool required = true) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) return InvalidArgument(fmt::format("{}.{}: missing", at, key));
    return Status::Ok();
  }
  try {
    *out = j[key].get<T>();
  } catch (const Json::exception&) {
    return InvalidArgument(
        fmt::format("{}.{}: has the wrong type ({})", at, key, j[key].type_name()));
  }
  return Status::Ok();
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  for (auto& w : Split(s, ' '))
    if (!w.empty()) out.push_back(std::move(w));
  return out;
}

}  // namespace

Result<DiskPlan> DiskPlanFromJson(const Json& plan) {
  DiskPlan dp;
  if (!plan.is_object()) return InvalidArgument("plan: expected a JSON object");
  if (plan.contains("disks") && !plan["disks"].is_null()) {
    if (!plan["disks"].is_array()) return InvalidArgument("plan.disks: expected an array");
    for (size_t i = 0; i < plan["disks"].size(); ++i) {
      const Json& d = plan["disks"][i];
      std::string at = fmt::format("plan.disks[{}]", i);
      if (!d.is_object()) return InvalidArgument(at + ": expected an object");
      DiskSpec disk;
      KILN_RETURN_IF_ERROR(Read(d, at, "role", &disk.role, false));
      KILN_RETURN_IF_ERROR(Read(d, at, "device", &disk.device));
      KILN_RETURN_IF_ERROR(Read(d, at, "table", &disk.table));
      KILN_RETURN_IF_ERROR(Read(d, at, "size_bytes", &disk.size_bytes, false));
      if (disk.table != "gpt" && disk.table != "msdos")
        return InvalidArgument(
            fmt::format("{}.table: \"{}\" is neither gpt nor msdos", at, disk.table));
      if (!StartsWith(disk.device, "/dev/"))
        return InvalidArgument(fmt::format("{}.device: \"{}\" is not under /dev", at, disk.device));
      const Json parts = d.value("partitions", Json::array());
      if (!parts.is_array()) return InvalidArgument(at + ".partitions: expected an array");
      for (size_t k = 0; k < parts.size(); ++k) {
        const Json& p = parts[k];
        std::string pat = fmt::format("{}.partitions[{}]", at, k);
        if (!p.is_object()) return InvalidArgument(pat + ": expected an object");
        PartitionSpec part;
        KILN_RETURN_IF_ERROR(Read(p, pat, "number", &part.number));
        KILN_RETURN_IF_ERROR(Read(p, pat, "device", &part.device));
        KILN_RETURN_IF_ERROR(Read(p, pat, "start_bytes", &part.start_bytes));
        KILN_RETURN_IF_ERROR(Read(p, pat, "size_bytes", &part.size_bytes));
        for (auto [key, field] : {std::pair{"name", &part.name},
                                  {"type", &part.type},
                                  {"gpt_type", &part.gpt_type},
                                  {"mbr_type", &part.mbr_type},
                                  {"fs", &part.fs},
                                  {"mount", &part.mount},
                                  {"options", &part.options},
                                  {"label", &part.label},
                                  {"mkfs_options", &part.mkfs_options}})
          KILN_RETURN_IF_ERROR(Read(p, pat, key, field, false));
        if (part.number != static_cast<int>(k) + 1)
          return InvalidArgument(fmt::format(
              "{}.number: {} (partitions are numbered 1, 2, ... in order)", pat, part.number));
        if (part.start_bytes % 512 || part.size_bytes % 512 || part.size_bytes == 0)
          return InvalidArgument(pat + ": start and size must be whole, non-empty sectors");
        if (disk.size_bytes && part.start_bytes + part.size_bytes > disk.size_bytes)
          return InvalidArgument(fmt::format("{}: ends at byte {}, past the disk's {} bytes", pat,
                                             part.start_bytes + part.size_bytes, disk.size_bytes));
        disk.parts.push_back(std::move(part));
      }
      dp.disks.push_back(std::move(disk));
    }
  }
  if (plan.contains("mounts") && !plan["mounts"].is_null()) {
    if (!plan["mounts"].is_array()) return InvalidArgument("plan.mounts: expected an array");
    for (size_t i = 0; i < plan["mounts"].size(); ++i) {
      const Json& m = plan["mounts"][i];
      std::string at = fmt::format("plan.mounts[{}]", i);
      MountSpec ms;
      KILN_RETURN_IF_ERROR(Read(m, at, "mount", &ms.mount));
      KILN_RETURN_IF_ERROR(Read(m, at, "device", &ms.device));
      KILN_RETURN_IF_ERROR(Read(m, at, "fs", &ms.fs));
      KILN_RETURN_IF_ERROR(Read(m, at, "options", &ms.options, false));
      if (ms.mount != "none" &&
          (ms.mount.empty() || ms.mount.front() != '/' || ms.mount.find("..") != std::string::npos))
        return InvalidArgument(
            fmt::format("{}.mount: \"{}\" is not an absolute path", at, ms.mount));
      dp.mounts.push_back(std::move(ms));
    }
  }
  return dp;
}

const PartitionSpec* DiskPlan::BootPartition() const {
  const PartitionSpec* root = nullptr;
  for (const auto& d : disks)
    for (const auto& p : d.parts) {
      if (p.mount == "/boot") return &p;
      if (p.mount == "/") root = &p;
    }
  return root;
}

const DiskSpec* DiskPlan::DiskOf(const PartitionSpec* part) const {
  for (const auto& d : disks)
    for (const auto& p : d.parts)
      if (&p == part) return &d;
  return nullptr;
}

std::string SfdiskScript(const DiskSpec& disk) {
  std::string s = fmt::format("label: {}\nunit: sectors\n\n", disk.table == "gpt" ? "gpt" : "dos");
  for (const auto& p : disk.parts) {
    std::string type = disk.table == "gpt" ? p.gpt_type : p.mbr_type;
    // Partitions are numbered in order (DiskPlanFromJson checks it).
    s += fmt::format("start={}, size={}, type={}", p.start_bytes / 512, p.size_bytes / 512, type);
    if (disk.table == "gpt" && !p.name.empty()) s += fmt::format(", name=\"{}\"", p.name);
    s += "\n";
  }
  return s;
}

Result<std::vector<std::string>> MkfsCommand(const PartitionSpec& p) {
  std::vector<std::string> argv;
  std::string fs = p.fs;
  if (fs.empty() && p.type == "esp") fs = "vfat";
  if (fs.empty() || fs == "none") return argv;
  if (fs == "ext4" || fs == "ext3" || fs == "ext2") {
    argv = {"mke2fs", "-F", "-q", "-t", fs};
    if (!p.label.empty()) argv.insert(argv.end(), {"-L", p.label});
  } else if (fs == "vfat" || fs == "fat32") {
    argv = {"mkfs.fat", "-F", "32"};
    if (!p.label.empty()) argv.insert(argv.end(), {"-n", p.label});
  } else if (fs == "swap") {
    argv = {"mkswap"};
    if (!p.label.empty()) argv.insert(argv.end(), {"-L", p.label});
  } else if (fs == "xfs") {
    argv = {"mkfs.xfs", "-f", "-q"};
    if (!p.label.empty()) argv.insert(argv.end(), {"-L", p.label});
  } else if (fs == "btrfs") {
    argv = {"mkfs.btrfs", "-f", "-q"};
    if (!p.label.empty()) argv.insert(argv.end(), {"-L", p.label});
  } else {
    return InvalidArgument(fmt::format("partition {} ({}): kiln cannot make a \"{}\" filesystem",
                                       p.number, p.device, fs));
  }
  for (auto& w : Words(p.mkfs_options)) argv.push_back(std::move(w));
  argv.push_back(p.device);
  return argv;
}

std::string FstabText(const std::vector<MountSpec>& mounts,
                      const std::map<std::string, std::string>& uuid_by_device) {
  std::string s = "# Written by kiln-agent. <device> <mount> <type> <options> <dump> <pass>\n";
  for (const auto& m : mounts) {
    auto it = uuid_by_device.find(m.device);
    std::string dev = it != uuid_by_device.end() ? "UUID=" + it->second : m.device;
    std::string fs = m.fs == "fat32" ? "vfat" : m.fs;
    std::string opts = m.options.empty() ? "defaults" : m.options;
    int pass = m.mount == "/" ? 1 : (m.fs == "swap" ? 0 : 2);
    if (m.fs == "swap") opts = opts == "defaults" ? "sw" : opts;
    s += fmt::format("{} {} {} {} 0 {}\n", dev, m.fs == "swap" ? "none" : m.mount, fs, opts, pass);
  }
  return s;
}

}  // namespace kiln::agent
