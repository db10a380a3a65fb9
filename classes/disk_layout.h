#pragma once
// The disk layout language of disk/<CLASS> files (grammar and semantics in
// docs/CLASSES.md "Disk layouts"). One statement per line, `#` comments:
//
//   disk os on=ssd,smallest table=gpt
//     part esp  size=512M  type=esp  mount=/boot/efi
//     part root size=20G-50G fs=ext4 mount=/ options=noatime,errors=remount-ro
//     part swap size=4G    fs=swap
//     part var  size=rest  fs=xfs   mount=/var
//
// Each `disk` names a role; a node's disks are matched to roles at plan
// time (by order, size, kind, name, serial, model). Statements are
// "KIND NAME key=value...", so RAID, LVM and LUKS can arrive later as new
// kinds (raid, vg, lv, luks are reserved and rejected with "not supported
// yet") and new partition types, without changing existing files.
//
// Parsing checks everything that one file can get wrong; what needs the
// merged layout of several classes (a mount point used twice) or a real
// disk (sizes that do not fit) is checked by disk_resolve.h.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classes/diagnostic.h"

namespace kiln::classes {

inline constexpr uint64_t kMiB = 1024ull * 1024;

// One end of a size: bytes or a percentage of the disk's usable space.
struct SizeBound {
  enum class Kind { kNone, kBytes, kPercent };
  Kind kind = Kind::kNone;
  uint64_t bytes = 0;
  double percent = 0;

  // Bytes for a disk of `usable` bytes (percent rounded down to MiB).
  uint64_t Resolve(uint64_t usable) const;
  std::string ToString() const;  // "20 GiB", "10%"
};

struct SizeSpec {
  // kFixed: min only. kRange: min..max (max kNone = grows without limit).
  // kRest: what is left ("rest" is the range 0..unbounded).
  enum class Kind { kFixed, kRange, kRest };
  Kind kind = Kind::kFixed;
  SizeBound min, max;
  std::string text;  // as written
  bool Unbounded() const {
    return kind == Kind::kRest || (kind == Kind::kRange && max.kind == SizeBound::Kind::kNone);
  }
};

// Parses "512M", "1.5T", "10%", "20G-50G", "10%-", "rest". Error texts are
// complete sentences about `text`.
std::optional<SizeSpec> ParseSize(std::string_view text, std::string* error);

enum class PartType { kLinux, kEsp, kBios, kSwap };
std::string_view PartTypeName(PartType t);

struct PartSpec {
  std::string name;
  SizeSpec size;
  PartType type = PartType::kLinux;
  std::string fs;       // ext4, ext3, ext2, xfs, btrfs, vfat, swap; "" = unformatted
  std::string mount;    // absolute path or ""
  std::string options;  // mount options, "defaults" when empty
  std::string label;    // filesystem label
  std::string mkfs;     // extra mkfs options
  SourceLoc loc;        // the `part` line
};

// Which physical disk a role takes. Filters narrow the node's eligible disks
// (not removable, not USB) in the order the agent reported them; then one
// picker chooses: the Nth, the largest, the smallest, or the first.
struct DiskSelector {
  std::string text;  // as written, "" = the next unused disk
  enum class Pick { kFirst, kNth, kLargest, kSmallest };
  Pick pick = Pick::kFirst;
  int nth = 0;                      // 1-based, for kNth
  std::optional<bool> rotational;   // ssd -> false, hdd -> true
  std::string transport;            // nvme, sata, ...
  std::string name, serial, model;  // exact name/serial; model substring
  uint64_t min_bytes = 0;
};

struct DiskSpec {
  std::string role;
  DiskSelector on;
  std::string table = "gpt";  // gpt or msdos
  std::vector<PartSpec> parts;
  SourceLoc loc;  // the `disk` line
};

struct DiskLayout {
  std::string file;  // "disk/WEB"
  std::string text;  // the source, for diagnostics found later
  std::vector<DiskSpec> disks;
};

// Parses a disk/<CLASS> file. Every problem is added to *diags (with line,
// column and the line's text); the layout holds what parsed. The layout is
// usable only when no diagnostic was added.
DiskLayout ParseDiskLayout(std::string_view text, const std::string& file, Diagnostics* diags);

}  // namespace kiln::classes
