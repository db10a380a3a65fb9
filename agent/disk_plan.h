#pragma once
// The disk part of a node's plan (docs/CLASSES.md "The plan": disks and
// mounts), as the agent carries it out, and the texts it derives from it:
// the sfdisk script per disk, the mkfs command per partition, fstab.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct PartitionSpec {
  int number = 0;
  std::string name, device;
  uint64_t start_bytes = 0, size_bytes = 0;
  std::string type;  // esp, bios, linux, swap, ...
  std::string gpt_type, mbr_type;
  std::string fs, mount, options, label, mkfs_options;
};

struct DiskSpec {
  std::string role, device, table;  // table: gpt or msdos
  uint64_t size_bytes = 0;
  std::vector<PartitionSpec> parts;
};

struct MountSpec {
  std::string mount;  // "none" for swap
  std::string device, fs, options;
};

struct DiskPlan {
  std::vector<DiskSpec> disks;
  std::vector<MountSpec> mounts;  // parents before children
  // The partition holding /boot (or / when there is no /boot), for the
  // boot loader; null when the plan mounts nothing.
  const PartitionSpec* BootPartition() const;
  const DiskSpec* DiskOf(const PartitionSpec* p) const;
};

// Reads plan["disks"] and plan["mounts"]. Errors name the JSON path:
// "plan.disks[0].partitions[2].start_bytes: expected an unsigned integer".
Result<DiskPlan> DiskPlanFromJson(const Json& plan);

// sfdisk's input for one disk, in 512-byte sectors.
std::string SfdiskScript(const DiskSpec& disk);

// The command that makes p's filesystem; empty when p has none (BIOS boot
// partition). kInvalidArgument for a filesystem kiln cannot make.
Result<std::vector<std::string>> MkfsCommand(const PartitionSpec& p);

// fstab for the mounts, with UUID= where uuid_by_device has one.
std::string FstabText(const std::vector<MountSpec>& mounts,
                      const std::map<std::string, std::string>& uuid_by_device);

}  // namespace kiln::agent
