// The disk layout language: parsing, errors with line and caret, fitting
// layouts to disks, and a fuzz loop over the parser.

#include "classes/disk_layout.h"

#include <catch2/catch.hpp>
#include <random>

#include "classes/disk_resolve.h"

using namespace kiln;
using namespace kiln::classes;

namespace {

constexpr uint64_t GiB = 1ull << 30;

std::string ParseError(const std::string& text) {
  Diagnostics d;
  ParseDiskLayout(text, "disk/WEB", &d);
  return d.Render();
}

FactDisk Disk(const std::string& name, uint64_t size, bool rotational = false,
              std::string transport = "sata") {
  FactDisk d;
  d.name = name;
  d.path = "/dev/" + name;
  d.size_bytes = size;
  d.rotational = rotational;
  d.transport = std::move(transport);
  return d;
}

struct Fitted {
  std::vector<ResolvedDisk> disks;
  std::string error;
};

Fitted Fit(const std::vector<std::pair<std::string, std::string>>& class_texts,
           const std::vector<FactDisk>& disks, const std::string& firmware = "") {
  static std::vector<DiskLayout> keep;
  keep.clear();
  keep.reserve(class_texts.size());
  std::vector<ClassLayout> layouts;
  for (const auto& [cls, text] : class_texts) {
    Diagnostics d;
    keep.push_back(ParseDiskLayout(text, "disk/" + cls, &d));
    REQUIRE(d.Render() == "");
  }
  for (size_t i = 0; i < class_texts.size(); ++i)
    layouts.push_back({class_texts[i].first, &keep[i]});
  Fitted f;
  Diagnostic err;
  if (!ResolveDisks(layouts, disks, firmware, &f.disks, &err)) f.error = err.Render();
  return f;
}

const char* kBasic =
    "# a comment\n"
    "disk os on=smallest table=gpt\n"
    "  part esp  size=512M type=esp mount=/boot/efi options=umask=0077\n"
    "  part root size=20G-40G fs=ext4 mount=/ options=noatime,errors=remount-ro label=\"root fs\"\n"
    "  part swap size=4G fs=swap   # swap\n"
    "  part var  size=rest fs=xfs mount=/var\n";

}  // namespace

TEST_CASE("a layout parses into disks and partitions") {
  Diagnostics d;
  DiskLayout l = ParseDiskLayout(kBasic, "disk/WEB", &d);
  REQUIRE(d.empty());
  REQUIRE(l.disks.size() == 1);
  const DiskSpec& os = l.disks[0];
  CHECK(os.role == "os");
  CHECK(os.on.pick == DiskSelector::Pick::kSmallest);
  CHECK(os.table == "gpt");
  REQUIRE(os.parts.size() == 4);
  CHECK(os.parts[0].type == PartType::kEsp);
  CHECK(os.parts[0].fs == "vfat");  // implied by type=esp
  CHECK(os.parts[1].size.kind == SizeSpec::Kind::kRange);
  CHECK(os.parts[1].size.min.bytes == 20 * GiB);
  CHECK(os.parts[1].size.max.bytes == 40 * GiB);
  CHECK(os.parts[1].label == "root fs");
  CHECK(os.parts[1].loc.ToString() == "disk/WEB:4");
  CHECK(os.parts[2].type == PartType::kSwap);
  CHECK(os.parts[3].size.kind == SizeSpec::Kind::kRest);
}

TEST_CASE("sizes: absolute, percent, ranges, rest") {
  std::string e;
  CHECK(ParseSize("1.5T", &e)->min.bytes == (3ull << 40) / 2);
  CHECK(ParseSize("512KiB", &e)->min.bytes == 512 * 1024);
  CHECK(ParseSize("10%", &e)->min.percent == 10);
  CHECK(ParseSize("10%-", &e)->Unbounded());
  CHECK(ParseSize("0-50G", &e)->max.bytes == 50 * GiB);
  CHECK(ParseSize("rest", &e)->kind == SizeSpec::Kind::kRest);
  for (auto [text, error] : std::vector<std::pair<const char*, const char*>>{
           {"512", "size \"512\" has no unit (use K, M, G or T: binary, 1M = 1024 KiB)"},
           {"20GB", "unit \"GB\" in \"20GB\" is decimal; kiln sizes are binary: write G"},
           {"10GX", "unknown unit \"GX\" in size \"10GX\" (use K, M, G, T or KiB..TiB)"},
           {"150%", "150% is not a percentage between 0 and 100"},
           {"50G-20G", "range \"50G-20G\" has its minimum above its maximum"},
           {"-20G", "range \"-20G\" needs a minimum (write 0-20G for \"up to\")"},
           {"0", "a partition cannot be 0 bytes"},
           {"big", "\"big\" is not a size (examples: 512M, 20G, 1.5T, 10%, 20G-50G, rest)"},
           {"99999999999T", "size \"99999999999T\" is too large"}}) {
    INFO(text);
    CHECK_FALSE(ParseSize(text, &e));
    CHECK(e == error);
  }
}

TEST_CASE("layout errors name the line and point at the problem") {
  CHECK(ParseError("disk os\n  part root size=10GX fs=ext4 mount=/\n") ==
        "disk/WEB:2: unknown unit \"GX\" in size \"10GX\" (use K, M, G, T or KiB..TiB)\n"
        "  part root size=10GX fs=ext4 mount=/\n"
        "                 ^ near here");
  CHECK(ParseError("part root size=1G\n") ==
        "disk/WEB:1: part before any disk (start with: disk ROLE)\npart root size=1G\n^ near here");
  CHECK(
      ParseError("disk os\n  part root size=1G fs=ext5 mount=/\n") ==
      "disk/WEB:2: unknown filesystem \"ext5\" (ext2, ext3, ext4, xfs, btrfs, vfat, swap or none)\n"
      "  part root size=1G fs=ext5 mount=/\n                       ^ near here");
  CHECK(ParseError("disk os\n  part root size=1G fs=ext4 mount=/var/../etc\n") ==
        "disk/WEB:2: mount point \"/var/../etc\" is not a clean absolute path\n"
        "  part root size=1G fs=ext4 mount=/var/../etc\n                                  ^ near "
        "here");
  CHECK(ParseError("disk os\n  part esp size=1G type=esp fs=ext4 mount=/boot/efi\n") ==
        "disk/WEB:2: an EFI system partition must be fs=vfat\n"
        "  part esp size=1G type=esp fs=ext4 mount=/boot/efi\n                               ^ "
        "near here");
  CHECK(ParseError("disk os\n  part b size=1M type=bios mount=/boot\n") ==
        "disk/WEB:2: a BIOS boot partition holds GRUB's core image: no fs and no mount\n"
        "  part b size=1M type=bios mount=/boot\n                                 ^ near here");
  CHECK(
      ParseError(
          "disk os table=msdos\n  part b size=1M type=bios\n  part r size=1G fs=ext4 mount=/\n") ==
      "disk/WEB:2: a BIOS boot partition is for GPT disks; msdos disks boot from the MBR gap\n"
      "  part b size=1M type=bios\n  ^ near here");
  CHECK(ParseError(
            "disk os\n  part a size=rest fs=ext4 mount=/\n  part b size=1G- fs=ext4 mount=/b\n") ==
        "disk/WEB:3: partitions \"a\" (line 2) and \"b\" both grow without limit; only one per "
        "disk may (rest or SIZE-)\n"
        "  part b size=1G- fs=ext4 mount=/b\n  ^ near here");
  CHECK(ParseError(
            "disk os\n  part a size=60% fs=ext4 mount=/\n  part b size=50% fs=ext4 mount=/b\n") ==
        "disk/WEB:1: disk os: the partitions ask for 110% of the disk\ndisk os\n^ near here");
  CHECK(ParseError("disk os\n  part a size=1G fs=ext4 mount=/\ndisk os\n  part b size=1G\n") ==
        "disk/WEB:3: disk role \"os\" already defined at line 1\ndisk os\n     ^ near here");
  CHECK(ParseError("disk os\n  part a size=1G\n  part a size=2G\n") ==
        "disk/WEB:3: partition \"a\" already defined at line 2\n  part a size=2G\n       ^ near "
        "here");
  CHECK(ParseError("disk os on=fastest\n  part a size=1G\n") ==
        "disk/WEB:1: unknown disk selector \"fastest\" (use N, largest, smallest, ssd, hdd, nvme, "
        "sata, name:X, "
        "serial:X, model:X, min:SIZE)\ndisk os on=fastest\n           ^ near here");
  CHECK(ParseError("disk os on=ssd,largest,2\n  part a size=1G\n") ==
        "disk/WEB:1: a disk selector picks one way only (N, largest or smallest)\n"
        "disk os on=ssd,largest,2\n                       ^ near here");
  CHECK(ParseError("disk os\n  part a size=1G label=\"unterminated\n") ==
        "disk/WEB:2: unterminated quote\n  part a size=1G label=\"unterminated\n                   "
        "    ^ near here");
  CHECK(ParseError("raid md0 level=1\n") ==
        "disk/WEB:1: \"raid\" is not supported yet (reserved for RAID, LVM and LUKS)\nraid md0 "
        "level=1\n^ near here");
  CHECK(ParseError("disk os\n  part a size=1G type=lvm\n") ==
        "disk/WEB:2: partition type \"lvm\" is not supported yet\n  part a size=1G type=lvm\n      "
        "                ^ near here");
  CHECK(ParseError("disk os\n") == "disk/WEB:1: disk os has no partitions\ndisk os\n^ near here");
  CHECK(ParseError("disk os table=msdos\n part a size=1G\n part b size=1G\n part c size=1G\n part "
                   "d size=1G\n part e size=1G\n") ==
        "disk/WEB:6: an msdos table holds at most 4 partitions here (no logical partitions); use "
        "table=gpt\n"
        " part e size=1G\n ^ near here");
}

TEST_CASE("every problem of a file is reported, not just the first") {
  Diagnostics d;
  ParseDiskLayout("disk os\n part a size=1X\n part b size=1G fs=zfs\nfrob\n", "disk/DB", &d);
  REQUIRE(d.size() == 3);
  CHECK(d.items()[0].loc.ToString() == "disk/DB:2");
  CHECK(d.items()[1].loc.ToString() == "disk/DB:3");
  CHECK(d.items()[2].OneLine() == "disk/DB:4: unknown statement \"frob\" (expected disk or part)");
}

TEST_CASE("fitting: fixed, ranges, rest, alignment and device names") {
  auto f = Fit({{"WEB", kBasic}}, {Disk("nvme0n1", 100 * GiB, false, "nvme")});
  REQUIRE(f.error == "");
  REQUIRE(f.disks.size() == 1);
  const auto& d = f.disks[0];
  CHECK(d.device == "/dev/nvme0n1");
  CHECK(d.usable_bytes == 100 * GiB - 2 * kMiB);
  REQUIRE(d.parts.size() == 4);
  CHECK(d.parts[0].device == "/dev/nvme0n1p1");
  CHECK(d.parts[0].start_bytes == kMiB);
  CHECK(d.parts[0].size_bytes == 512 * kMiB);
  CHECK(d.parts[1].size_bytes == 40 * GiB);  // the range grows to its maximum
  CHECK(d.parts[1].start_bytes == kMiB + 512 * kMiB);
  CHECK(d.parts[2].size_bytes == 4 * GiB);
  // rest takes the remainder, to the MiB.
  CHECK(d.parts[3].size_bytes == d.usable_bytes - 512 * kMiB - 40 * GiB - 4 * GiB);
  CHECK(d.unallocated_bytes == 0);
  for (const auto& p : d.parts) CHECK(p.start_bytes % kMiB == 0);

  // On a small disk the range shrinks toward its minimum.
  auto small = Fit({{"WEB", kBasic}}, {Disk("sda", 30 * GiB)});
  REQUIRE(small.error == "");
  // Too little for the range's maximum: the range and rest share the free
  // space by headroom (20 GiB for the range, all of the free space for rest).
  const auto& sp = small.disks[0].parts;
  uint64_t free = small.disks[0].usable_bytes - 512 * kMiB - 20 * GiB - 4 * GiB;
  CHECK(sp[1].size_bytes ==
        20 * GiB + static_cast<uint64_t>((long double)free * (20 * GiB) / (20 * GiB + free)) /
                       kMiB * kMiB);
  CHECK(sp[3].size_bytes > 0);
  CHECK(sp[1].size_bytes + sp[3].size_bytes + 512 * kMiB + 4 * GiB == small.disks[0].usable_bytes);
}

TEST_CASE("bounded ranges share free space by headroom, percentages are of usable space") {
  auto f =
      Fit({{"DB",
            "disk os\n part a size=10G-20G fs=ext4 mount=/\n part b size=10G-40G fs=ext4 mount=/b\n"
            " part c size=10% fs=ext4 mount=/c\n"}},
          {Disk("sda", 100 * GiB)});
  REQUIRE(f.error == "");
  const auto& p = f.disks[0].parts;
  uint64_t usable = f.disks[0].usable_bytes;
  CHECK(p[2].size_bytes == usable / 10 / kMiB * kMiB);
  CHECK(p[0].size_bytes == 20 * GiB);
  CHECK(p[1].size_bytes == 40 * GiB);
  CHECK(f.disks[0].unallocated_bytes ==
        usable - p[0].size_bytes - p[1].size_bytes - p[2].size_bytes);

  auto tight = Fit(
      {{"DB",
        "disk os\n part a size=10G-20G fs=ext4 mount=/\n part b size=10G-40G fs=ext4 mount=/b\n"}},
      {Disk("sda", 30 * GiB)});
  REQUIRE(tight.error == "");
  uint64_t free = tight.disks[0].usable_bytes - 20 * GiB;
  // 1:3 headroom split of the free space.
  CHECK(tight.disks[0].parts[0].size_bytes == 10 * GiB + free / 4 / kMiB * kMiB);
}

TEST_CASE("sizes that do not fit are errors naming the disk and the partitions") {
  auto f = Fit({{"DB",
                 "disk os\n  part root size=30G fs=ext4 mount=/\n  part var size=20G-  fs=ext4 "
                 "mount=/var\n"}},
               {Disk("sda", 40 * GiB)});
  CHECK(f.error ==
        "disk/DB:1: disk os does not fit on sda (40.0 GiB, 40.0 GiB usable): the partitions need "
        "at least "
        "50.0 GiB (root 30.0 GiB + var 20.0 GiB)\ndisk os\n^ near here");
  auto none = Fit({{"DB",
                    "disk os\n part a size=50% fs=ext4 mount=/\n part b size=50% fs=ext4 "
                    "mount=/b\n part c size=rest\n"}},
                  {Disk("sda", 10 * GiB)});
  CHECK(none.error ==
        "disk/DB:4: partition c (size=rest) gets no space on sda: the other partitions take all "
        "10.0 GiB\n"
        " part c size=rest\n ^ near here");
  auto msdos = Fit({{"DB", "disk os table=msdos\n part a size=rest fs=ext4 mount=/\n"}},
                   {Disk("sda", 4096 * GiB)});
  CHECK(msdos.error.find("disk/DB:1: disk os: an msdos table cannot address past 2 TiB (sda is 4.0 "
                         "TiB); use table=gpt") == 0);
}

TEST_CASE("disks are chosen by order, size, kind and name, removable and USB disks never") {
  std::vector<FactDisk> disks = {Disk("sda", 4000 * GiB, true), Disk("sdb", 480 * GiB),
                                 Disk("nvme0n1", 960 * GiB, false, "nvme"),
                                 Disk("sdc", 16 * GiB, false, "usb")};
  auto f = Fit({{"DB",
                 "disk os on=ssd,smallest\n part r size=rest fs=ext4 mount=/\n"
                 "disk data on=largest\n part d size=rest fs=xfs mount=/data\n"
                 "disk fast on=nvme\n part f size=rest fs=xfs mount=/fast\n"}},
               disks);
  REQUIRE(f.error == "");
  CHECK(f.disks[0].name == "sdb");
  CHECK(f.disks[1].name == "sda");
  CHECK(f.disks[2].name == "nvme0n1");
  auto second = Fit({{"DB", "disk os on=2\n part r size=rest fs=ext4 mount=/\n"}}, disks);
  CHECK(second.disks[0].name == "sdb");
  auto missing = Fit({{"DB", "disk os on=hdd,min:8T\n part r size=rest fs=ext4 mount=/\n"}}, disks);
  CHECK(missing.error ==
        "disk/DB:1: disk os (on=hdd,min:8T): no disk of this node matches (its disks: sda 3.9 TiB "
        "hdd sata, "
        "sdb 480.0 GiB ssd sata, nvme0n1 960.0 GiB ssd nvme)\ndisk os on=hdd,min:8T\n^ near here");
  auto clash = Fit({{"DB",
                     "disk os on=1\n part r size=rest fs=ext4 mount=/\ndisk data on=name:sda\n "
                     "part d size=rest fs=xfs mount=/d\n"}},
                   disks);
  CHECK(clash.error ==
        "disk/DB:3: disk data (on=name:sda) would take sda, which disk os already took (disk/DB:1, "
        "class DB)\n"
        "disk data on=name:sda\n^ near here");
}

TEST_CASE("a higher class wins a disk role, contradictions across classes name both places") {
  const char* def = "disk os\n part root size=rest fs=ext4 mount=/\n";
  const char* db =
      "disk os\n part root size=20G fs=ext4 mount=/\n part var size=rest fs=ext4 mount=/var\n"
      "disk data\n part pg size=rest fs=xfs mount=/var/lib/postgresql\n";
  auto f = Fit({{"DEFAULT", def}, {"DB", db}}, {Disk("sda", 100 * GiB), Disk("sdb", 1000 * GiB)});
  REQUIRE(f.error == "");
  REQUIRE(f.disks.size() == 2);
  CHECK(f.disks[0].cls == "DB");
  CHECK(f.disks[0].parts.size() == 2);
  REQUIRE(f.disks[0].overrode.size() == 1);
  CHECK(f.disks[0].overrode[0].cls == "DEFAULT");
  CHECK(f.disks[0].overrode[0].loc.ToString() == "disk/DEFAULT:1");

  auto twice = Fit({{"DEFAULT", def}, {"DB", "disk data\n part x size=rest fs=xfs mount=/\n"}},
                   {Disk("sda", 100 * GiB), Disk("sdb", 100 * GiB)});
  CHECK(twice.error ==
        "disk/DB:2: mount point / is also mounted by disk/DEFAULT:2 (class DEFAULT, disk os, "
        "partition root)\n"
        " part x size=rest fs=xfs mount=/\n ^ near here");
  auto esp = Fit(
      {{"DEFAULT",
        "disk os\n part e size=100M type=esp mount=/boot/efi\n part r size=rest fs=ext4 mount=/\n"},
       {"GPU", "disk scratch\n part e2 size=100M type=esp\n"}},
      {Disk("sda", 100 * GiB), Disk("sdb", 100 * GiB)});
  CHECK(
      esp.error ==
      "disk/GPU:2: a second EFI system partition; the first is at disk/DEFAULT:2 (class DEFAULT)\n"
      " part e2 size=100M type=esp\n ^ near here");
  auto noroot =
      Fit({{"DB", "disk data\n part d size=rest fs=xfs mount=/data\n"}}, {Disk("sda", 100 * GiB)});
  CHECK(
      noroot.error ==
      "disk/DB:1: no partition mounts / (the layout comes from disk/DB:1)\ndisk data\n^ near here");
  auto uefi = Fit({{"DB", "disk os\n part r size=rest fs=ext4 mount=/\n"}},
                  {Disk("sda", 100 * GiB)}, "uefi");
  CHECK(uefi.error.find("disk/DB:1: this node boots UEFI but its disk layout has no EFI system "
                        "partition (type=esp)") == 0);
}

TEST_CASE("fuzz: mutated layouts never crash the parser and every error has a place") {
  std::mt19937 rng(20261126);
  const std::string seeds[] = {kBasic,
                               "disk os on=ssd,smallest table=msdos\n part root size=10%-50% "
                               "fs=ext4 mount=/ options=noatime\n part s size=2G fs=swap\n",
                               "disk data on=name:nvme0n1 table=gpt\n part d size=100% fs=xfs "
                               "mount=/srv label=\"data \\\"x\\\"\" mkfs=\"-K\"\n"};
  const std::string alphabet =
      "disk part size= fs= mount= on= table= type= esp bios rest 0123456789%-.MGTK/\"\\#\n\t =,:";
  int parsed_ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text = seeds[rng() % 3];
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      size_t pos = text.empty() ? 0 : rng() % (text.size() + 1);
      switch (rng() % 4) {
        case 0: text.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 1:
          if (pos < text.size()) text.erase(pos, 1 + rng() % 8);
          break;
        case 2:
          if (pos < text.size()) text[pos] = static_cast<char>(rng() % 256);
          break;
        case 3: {
          size_t from = rng() % (text.size() + 1);
          text.insert(pos, text.substr(from, rng() % 24));
          break;
        }
      }
    }
    Diagnostics d;
    DiskLayout l = ParseDiskLayout(text, "disk/FUZZ", &d);
    int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    for (const auto& diag : d.items()) {
      INFO(text);
      INFO(diag.Render());
      REQUIRE(diag.loc.file == "disk/FUZZ");
      REQUIRE(diag.loc.line >= 1);
      REQUIRE(diag.loc.line <= lines);
      REQUIRE(!diag.message.empty());
    }
    if (d.empty()) {
      ++parsed_ok;
      // A layout that parses can be fitted (or refused) without crashing.
      std::vector<ResolvedDisk> out;
      Diagnostic err;
      ResolveDisks({{"FUZZ", &l}},
                   {Disk("sda", 100 * GiB), Disk("nvme0n1", 500 * GiB, false, "nvme")}, "", &out,
                   &err);
    }
  }
  CHECK(parsed_ok > 100);  // the loop explores valid layouts too
}
