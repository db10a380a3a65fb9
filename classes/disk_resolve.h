#pragma once
// Merges the disk layouts of a node's classes and fits them to its disks.
//
// Merging is per disk role: the highest class that defines a role wins it
// whole (its partitions replace the lower class's); roles keep the position
// where they first appeared. Across the merged layout, contradictions are
// errors that name both places: a mount point used twice, two EFI system
// partitions, two roles on one physical disk, no root file system.
//
// Fitting: every disk keeps its first MiB free (and, for GPT, its last MiB
// for the backup table); partitions start on MiB boundaries and their sizes
// are whole MiB. Fixed sizes and percentages (of the usable space) are
// exact; ranges start at their minimum; bounded ranges then grow towards
// their maximum, sharing the free space in proportion to their headroom;
// the one unbounded partition (rest, or SIZE-) takes what is left. Space
// nobody claims stays unallocated.

#include <cstdint>
#include <string>
#include <vector>

#include "classes/diagnostic.h"
#include "classes/disk_layout.h"
#include "classes/node.h"

namespace kiln::classes {

// One class's layout, in class order (lowest first).
struct ClassLayout {
  std::string cls;
  const DiskLayout* layout;
};

struct Overridden {
  std::string cls;
  SourceLoc loc;
};

struct ResolvedPartition {
  int number = 0;
  std::string name;
  std::string device;  // /dev/sda1, /dev/nvme0n1p1
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;
  PartType type = PartType::kLinux;
  std::string fs, mount, options, label, mkfs;
  std::string size_text;  // as written
  SourceLoc loc;
};

struct ResolvedDisk {
  std::string role;
  std::string cls;  // the class whose layout won this role
  SourceLoc loc;
  std::vector<Overridden> overrode;
  std::string selector;  // as written
  std::string name, device;
  uint64_t size_bytes = 0;
  uint64_t usable_bytes = 0;
  uint64_t unallocated_bytes = 0;
  std::string table;
  std::vector<ResolvedPartition> parts;
};

// Merges and fits. firmware is "uefi", "bios" or "" (unknown). On failure
// returns false with *err naming the file:line that cannot be satisfied.
bool ResolveDisks(const std::vector<ClassLayout>& layouts, const std::vector<FactDisk>& disks,
                  const std::string& firmware, std::vector<ResolvedDisk>* out, Diagnostic* err);

// GPT partition type GUID and MBR type byte (hex) for a partition type.
std::string_view GptTypeGuid(PartType t);
std::string_view MbrTypeId(PartType t);

// /dev/sda + 1 -> /dev/sda1; /dev/nvme0n1 + 1 -> /dev/nvme0n1p1.
std::string PartitionDevice(const std::string& disk_device, int number);

}  // namespace kiln::classes
