#include "agent/disk_setup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::agent {

Result<uint64_t> BlockDeviceSize(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + device, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat " + device, errno);
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t bytes = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0) return ErrnoError("size of " + device, errno);
  return bytes;
}

DiskSetup::DiskSetup(CommandRunner* runner, DiskSetupOptions opts)
    : runner_(runner), opts_(std::move(opts)) {
  if (!opts_.device_size) opts_.device_size = BlockDeviceSize;
}

void DiskSetup::Step(const std::string& s, int done, int total) {
  if (opts_.on_step) opts_.on_step(s, done, total);
}

Status DiskSetup::CheckSizes(const DiskPlan& plan) {
  for (const auto& d : plan.disks) {
    KILN_ASSIGN_OR_RETURN(uint64_t have, opts_.device_size(d.device));
    uint64_t need = 0;
    for (const auto& p : d.parts) need = std::max(need, p.start_bytes + p.size_bytes);
    if (d.table == "gpt") need += 1 << 20;  // the backup table at the end
    if (need > have)
      return FailedPrecondition(
          fmt::format("disk {} ({}) holds {} but the layout needs {}: nothing was written",
                      d.device, d.role, HumanBytes(have), HumanBytes(need)));
  }
  return Status::Ok();
}

Status DiskSetup::WaitForDevice(const std::string& device) {
  // udev is absent in the install environment: devtmpfs makes the node
  // when the kernel has read the new table, which can take a moment.
  for (int i = 0; i < 40; ++i) {
    if (::access(device.c_str(), F_OK) == 0) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return NotFound(fmt::format("{} did not appear after partitioning", device));
}

Status DiskSetup::Partition(const DiskPlan& plan) {
  int n = 0, total = static_cast<int>(plan.disks.size());
  for (const auto& d : plan.disks) {
    Step("partition " + d.device, n++, total);
    // Old signatures (filesystems, RAID, LVM) would confuse the new layout.
    KILN_RETURN_IF_ERROR(runner_
                             ->Check({"sfdisk", "--quiet", "--wipe", "always", "--wipe-partitions",
                                      "always", d.device},
                                     {.stdin_data = SfdiskScript(d)})
                             .WithContext("partitioning " + d.device));
    // Tell the kernel about the new partitions: a no-op where sfdisk's own
    // re-read worked; needed for loop devices and busy disks. Some kernels
    // take --update, others only --add.
    bool all = false;
    for (const char* how : {"--update", "--add", "--update"}) {
      (void)runner_->Run({"partx", how, d.device}, {});
      all = true;
      for (const auto& p : d.parts) all = all && WaitForDevice(p.device).ok();
      if (all) break;
    }
    if (!all)
      for (const auto& p : d.parts) KILN_RETURN_IF_ERROR(WaitForDevice(p.device));
  }
  Step("partitioned", total, total);
  return Status::Ok();
}

Status DiskSetup::Format(const DiskPlan& plan) {
  std::vector<const PartitionSpec*> parts;
  for (const auto& d : plan.disks)
    for (const auto& p : d.parts) parts.push_back(&p);
  int n = 0;
  for (const auto* p : parts) {
    KILN_ASSIGN_OR_RETURN(auto argv, MkfsCommand(*p));
    if (argv.empty()) continue;
    Step("mkfs " + p->device, n++, static_cast<int>(parts.size()));
    KILN_RETURN_IF_ERROR(runner_->Check(argv).WithContext("formatting " + p->device));
  }
  return Status::Ok();
}

Status DiskSetup::Mount(const DiskPlan& plan) {
  for (const auto& m : plan.mounts) {
    if (m.fs == "swap" || m.mount == "none") continue;
    std::string dir = opts_.target + (m.mount == "/" ? "" : m.mount);
    KILN_RETURN_IF_ERROR(MakeDirs(dir));
    std::vector<std::string> argv = {"mount", "-t", m.fs == "fat32" ? "vfat" : m.fs};
    if (!m.options.empty() && m.options != "defaults") argv.insert(argv.end(), {"-o", m.options});
    argv.insert(argv.end(), {m.device, dir});
    Step("mount " + m.mount, 0, 0);
    KILN_RETURN_IF_ERROR(runner_->Check(argv).WithContext("mounting " + m.mount));
  }
  return Status::Ok();
}

Status DiskSetup::Unmount(const DiskPlan& plan) {
  Status first;
  for (auto it = plan.mounts.rbegin(); it != plan.mounts.rend(); ++it) {
    if (it->fs == "swap" || it->mount == "none") continue;
    std::string dir = opts_.target + (it->mount == "/" ? "" : it->mount);
    Status s = runner_->Check({"umount", dir});
    if (!s.ok() && first.ok()) first = s.WithContext("unmounting " + it->mount);
  }
  return first;
}

Result<std::string> DiskSetup::Fstab(const DiskPlan& plan) {
  std::map<std::string, std::string> uuids;
  static const std::regex kUuid("UUID=\"([^\"]+)\"");
  for (const auto& m : plan.mounts) {
    // Both util-linux and busybox blkid print `DEV: ... UUID="..." ...`.
    auto out = runner_->Output({"blkid", m.device});
    std::smatch match;
    if (out.ok() && std::regex_search(*out, match, kUuid)) uuids[m.device] = match[1];
  }
  return FstabText(plan.mounts, uuids);
}

}  // namespace kiln::agent
