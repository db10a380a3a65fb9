#include "classes/disk_resolve.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/strings.h"

namespace kiln::classes {
namespace {

struct Winner {
  const DiskSpec* spec;
  std::string cls;
  const DiskLayout* layout;
  std::vector<Overridden> overrode;
};

Diagnostic At(const DiskLayout& l, const SourceLoc& loc, std::string msg) {
  return MakeDiagnostic(loc.file, l.text, loc.line, loc.column, std::move(msg));
}

std::string DescribeDisk(const FactDisk& d) {
  std::string kind = d.transport.empty() ? "" : " " + d.transport;
  return fmt::format("{} {}{}{}", d.name, HumanBytes(d.size_bytes), d.rotational ? " hdd" : " ssd",
                     kind);
}

std::string DescribeDisks(const std::vector<const FactDisk*>& disks) {
  if (disks.empty()) return "none";
  std::string s;
  for (const auto* d : disks) s += (s.empty() ? "" : ", ") + DescribeDisk(*d);
  return s;
}

bool Matches(const DiskSelector& sel, const FactDisk& d) {
  if (sel.rotational && *sel.rotational != d.rotational) return false;
  if (!sel.transport.empty() && sel.transport != d.transport) return false;
  if (!sel.name.empty() && sel.name != d.name) return false;
  if (!sel.serial.empty() && sel.serial != d.serial) return false;
  if (!sel.model.empty() && d.model.find(sel.model) == std::string::npos) return false;
  if (d.size_bytes < sel.min_bytes) return false;
  return true;
}

// Sizes every partition of one disk; false with *why when they do not fit.
bool Fit(const DiskSpec& spec, ResolvedDisk* rd, const DiskLayout& layout, Diagnostic* err) {
  uint64_t aligned = rd->size_bytes / kMiB * kMiB;
  uint64_t reserve = kMiB + (spec.table == "gpt" ? kMiB : 0);
  rd->usable_bytes = aligned > reserve ? aligned - reserve : 0;
  const uint64_t usable = rd->usable_bytes;
  size_t n = spec.parts.size();
  std::vector<uint64_t> size(n), max(n, 0);
  std::vector<bool> bounded_range(n, false);
  uint64_t need = 0;
  std::string parts_text;
  for (size_t i = 0; i < n; ++i) {
    const PartSpec& p = spec.parts[i];
    size[i] = p.size.min.Resolve(usable) / kMiB * kMiB;
    if (p.size.kind == SizeSpec::Kind::kFixed && size[i] == 0) {
      *err = At(layout, p.loc,
                fmt::format("partition {} ({}) comes to less than 1 MiB on {} ({})", p.name,
                            p.size.text, rd->name, HumanBytes(rd->size_bytes)));
      return false;
    }
    if (p.size.kind == SizeSpec::Kind::kRange && !p.size.Unbounded()) {
      max[i] = p.size.max.Resolve(usable) / kMiB * kMiB;
      if (max[i] < size[i]) {
        *err = At(layout, p.loc,
                  fmt::format("partition {}: range {} is empty on {} ({} usable): {} > {}", p.name,
                              p.size.text, rd->name, HumanBytes(usable), HumanBytes(size[i]),
                              HumanBytes(max[i])));
        return false;
      }
      bounded_range[i] = true;
    }
    need += size[i];
    if (size[i] > 0)
      parts_text +=
          fmt::format("{}{} {}", parts_text.empty() ? "" : " + ", p.name, HumanBytes(size[i]));
  }
  if (need > usable) {
    *err =
        At(layout, spec.loc,
           fmt::format(
               "disk {} does not fit on {} ({}, {} usable): the partitions need at least {} ({})",
               spec.role, rd->name, HumanBytes(rd->size_bytes), HumanBytes(usable),
               HumanBytes(need), parts_text));
    return false;
  }
  uint64_t free = usable - need;
  // Bounded ranges grow towards their maximum. If the free space cannot
  // take them all there, they share it in proportion to their headroom with
  // the unbounded partition, whose headroom counts as the free space itself.
  uint64_t headroom = 0;
  bool unbounded = false;
  for (size_t i = 0; i < n; ++i) {
    if (bounded_range[i]) headroom += max[i] - size[i];
    if (spec.parts[i].size.Unbounded()) unbounded = true;
  }
  if (headroom > 0 && free > 0) {
    long double total = headroom >= free && unbounded ? static_cast<long double>(headroom) + free
                                                      : static_cast<long double>(headroom);
    uint64_t give_total = std::min(free, headroom);
    if (headroom >= free && unbounded) give_total = free;
    uint64_t given = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!bounded_range[i]) continue;
      uint64_t room = max[i] - size[i];
      auto share = static_cast<uint64_t>(static_cast<long double>(give_total) * room / total);
      share = std::min(share, room) / kMiB * kMiB;
      size[i] += share;
      given += share;
    }
    free -= given;
  }
  for (size_t i = 0; i < n; ++i)
    if (spec.parts[i].size.Unbounded()) {
      size[i] += free / kMiB * kMiB;
      free -= free / kMiB * kMiB;
      if (size[i] == 0) {
        *err =
            At(layout, spec.parts[i].loc,
               fmt::format(
                   "partition {} (size={}) gets no space on {}: the other partitions take all {}",
                   spec.parts[i].name, spec.parts[i].size.text, rd->name, HumanBytes(usable)));
        return false;
      }
    }
  rd->unallocated_bytes = free;
  uint64_t at = kMiB;
  for (size_t i = 0; i < n; ++i) {
    const PartSpec& p = spec.parts[i];
    ResolvedPartition rp;
    rp.number = static_cast<int>(i) + 1;
    rp.name = p.name;
    rp.device = PartitionDevice(rd->device, rp.number);
    rp.start_bytes = at;
    rp.size_bytes = size[i];
    rp.type = p.type;
    rp.fs = p.fs;
    rp.mount = p.mount;
    rp.options = p.options.empty() && !p.mount.empty() ? "defaults" : p.options;
    rp.label = p.label;
    rp.mkfs = p.mkfs;
    rp.size_text = p.size.text;
    rp.loc = p.loc;
    at += size[i];
    rd->parts.push_back(std::move(rp));
  }
  if (spec.table == "msdos" && at > (2ull << 40)) {
    *err = At(
        layout, spec.loc,
        fmt::format("disk {}: an msdos table cannot address past 2 TiB ({} is {}); use table=gpt",
                    spec.role, rd->name, HumanBytes(rd->size_bytes)));
    return false;
  }
  return true;
}

}  // namespace

std::string PartitionDevice(const std::string& disk_device, int number) {
  bool digit = !disk_device.empty() && disk_device.back() >= '0' && disk_device.back() <= '9';
  return disk_device + (digit ? "p" : "") + std::to_string(number);
}

std::string_view GptTypeGuid(PartType t) {
  switch (t) {
    case PartType::kLinux: return "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    case PartType::kEsp: return "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    case PartType::kBios: return "21686148-6449-6E6F-744E-656564454649";
    case PartType::kSwap: return "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F";
  }
  return "";
}

std::string_view MbrTypeId(PartType t) {
  switch (t) {
    case PartType::kLinux: return "83";
    case PartType::kEsp: return "ef";
    case PartType::kBios: return "";
    case PartType::kSwap: return "82";
  }
  return "";
}

bool ResolveDisks(const std::vector<ClassLayout>& layouts, const std::vector<FactDisk>& disks,
                  const std::string& firmware, std::vector<ResolvedDisk>* out, Diagnostic* err) {
  out->clear();
  // Merge: the highest class wins a role; the role keeps its first position.
  std::vector<Winner> merged;
  for (const auto& cl : layouts) {
    for (const auto& spec : cl.layout->disks) {
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const Winner& w) { return w.spec->role == spec.role; });
      if (it == merged.end()) {
        merged.push_back({&spec, cl.cls, cl.layout, {}});
      } else {
        it->overrode.push_back({it->cls, it->spec->loc});
        it->spec = &spec;
        it->cls = cl.cls;
        it->layout = cl.layout;
      }
    }
  }
  if (merged.empty()) return true;

  // Contradictions across the merged layout.
  std::map<std::string, std::pair<const PartSpec*, const Winner*>> mounts;
  const PartSpec* esp = nullptr;
  const Winner* esp_w = nullptr;
  for (const auto& w : merged) {
    for (const auto& p : w.spec->parts) {
      if (!p.mount.empty()) {
        auto [it, fresh] = mounts.emplace(p.mount, std::make_pair(&p, &w));
        if (!fresh) {
          *err = At(
              *w.layout, p.loc,
              fmt::format("mount point {} is also mounted by {} (class {}, disk {}, partition {})",
                          p.mount, it->second.first->loc.ToString(), it->second.second->cls,
                          it->second.second->spec->role, it->second.first->name));
          return false;
        }
      }
      if (p.type == PartType::kEsp) {
        if (esp) {
          *err = At(*w.layout, p.loc,
                    fmt::format("a second EFI system partition; the first is at {} (class {})",
                                esp->loc.ToString(), esp_w->cls));
          return false;
        }
        esp = &p;
        esp_w = &w;
      }
    }
  }
  if (!mounts.count("/")) {
    std::string where;
    for (const auto& w : merged) where += (where.empty() ? "" : ", ") + w.spec->loc.ToString();
    *err = At(*merged.front().layout, merged.front().spec->loc,
              "no partition mounts / (the layout comes from " + where + ")");
    return false;
  }
  if (firmware == "uefi" && !esp) {
    *err = At(*merged.front().layout, merged.front().spec->loc,
              "this node boots UEFI but its disk layout has no EFI system partition (type=esp)");
    return false;
  }

  // Assign physical disks to roles.
  std::vector<const FactDisk*> eligible;
  for (const auto& d : disks)
    if (!d.removable && d.transport != "usb") eligible.push_back(&d);
  std::map<const FactDisk*, const Winner*> taken;
  for (const auto& w : merged) {
    const DiskSelector& sel = w.spec->on;
    std::vector<const FactDisk*> cand;
    for (const auto* d : eligible)
      if (Matches(sel, *d)) cand.push_back(d);
    const FactDisk* pick = nullptr;
    std::string on = sel.text.empty() ? "the next free disk" : "on=" + sel.text;
    if (sel.pick == DiskSelector::Pick::kNth) {
      if (static_cast<int>(cand.size()) >= sel.nth) pick = cand[sel.nth - 1];
    } else {
      std::vector<const FactDisk*> free;
      for (const auto* d : cand)
        if (!taken.count(d)) free.push_back(d);
      if (!free.empty()) {
        if (sel.pick == DiskSelector::Pick::kLargest)
          pick = *std::max_element(free.begin(), free.end(),
                                   [](auto* a, auto* b) { return a->size_bytes < b->size_bytes; });
        else if (sel.pick == DiskSelector::Pick::kSmallest)
          pick = *std::min_element(free.begin(), free.end(),
                                   [](auto* a, auto* b) { return a->size_bytes < b->size_bytes; });
        else
          pick = free.front();
      } else if (!cand.empty()) {
        pick = cand.front();  // reported as taken below
      }
    }
    if (!pick) {
      *err = At(*w.layout, w.spec->loc,
                fmt::format("disk {} ({}): no disk of this node matches (its disks: {})",
                            w.spec->role, on, DescribeDisks(eligible)));
      return false;
    }
    if (auto t = taken.find(pick); t != taken.end()) {
      *err = At(*w.layout, w.spec->loc,
                fmt::format("disk {} ({}) would take {}, which disk {} already took ({}, class {})",
                            w.spec->role, on, pick->name, t->second->spec->role,
                            t->second->spec->loc.ToString(), t->second->cls));
      return false;
    }
    taken[pick] = &w;
    ResolvedDisk rd;
    rd.role = w.spec->role;
    rd.cls = w.cls;
    rd.loc = w.spec->loc;
    rd.overrode = w.overrode;
    rd.selector = sel.text;
    rd.name = pick->name;
    rd.device = pick->path;
    rd.size_bytes = pick->size_bytes;
    rd.table = w.spec->table;
    if (!Fit(*w.spec, &rd, *w.layout, err)) return false;
    out->push_back(std::move(rd));
  }
  return true;
}

}  // namespace kiln::classes
