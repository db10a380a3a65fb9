#pragma once
// Carries out a plan's disk layout on the machine: checks every disk is big
// enough before anything is written, partitions with sfdisk, makes the
// filesystems, mounts them under the target root (parents first), writes
// fstab with UUIDs, and unmounts in reverse.

#include <functional>
#include <map>
#include <string>

#include "agent/command_runner.h"
#include "agent/disk_plan.h"
#include "common/status.h"

namespace kiln::agent {

struct DiskSetupOptions {
  std::string target = "/target";
  // Where a block device's size comes from (tests replace it).
  std::function<Result<uint64_t>(const std::string& device)> device_size;
  // Called as each step starts ("partition /dev/vda", "mkfs /dev/vda2").
  std::function<void(const std::string& step, int done, int total)> on_step;
};

class DiskSetup {
 public:
  DiskSetup(CommandRunner* runner, DiskSetupOptions opts);

  // kFailedPrecondition naming the disk and both sizes when a layout needs
  // more than the device has; nothing is written before this passes.
  Status CheckSizes(const DiskPlan& plan);
  Status Partition(const DiskPlan& plan);
  Status Format(const DiskPlan& plan);
  Status Mount(const DiskPlan& plan);
  // Unmounts everything Mount mounted, children first. Best effort: it
  // goes on after a failure and reports the first.
  Status Unmount(const DiskPlan& plan);
  // UUIDs of the formatted partitions (blkid), then fstab text.
  Result<std::string> Fstab(const DiskPlan& plan);

 private:
  Status WaitForDevice(const std::string& device);
  void Step(const std::string& s, int done, int total);

  CommandRunner* runner_;
  DiskSetupOptions opts_;
};

// The size of a block device (BLKGETSIZE64), or of a regular file.
Result<uint64_t> BlockDeviceSize(const std::string& device);

}  // namespace kiln::agent
