#include "classes/disk_layout.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "classes/names.h"
#include "common/strings.h"

namespace kiln::classes {
namespace {

struct Token {
  std::string text;   // the whole token, unquoted
  std::string key;    // for key=value
  std::string value;  // for key=value, unquoted
  bool has_eq = false;
  int column = 0;        // 1-based start of the token
  int value_column = 0;  // 1-based start of the value
};

// Splits one line into tokens; quotes ("a b") group, \" and \\ escape
// inside quotes, # starts a comment outside them. Returns false with *error
// and *col on an unterminated quote.
bool Tokenize(std::string_view line, std::vector<Token>* out, std::string* error, int* col) {
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') break;
    Token t;
    t.column = static_cast<int>(i) + 1;
    std::string raw;
    bool in_quote = false;
    int quote_col = 0;
    while (i < line.size()) {
      char d = line[i];
      if (in_quote) {
        if (d == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          raw += line[i + 1];
          i += 2;
          continue;
        }
        if (d == '"') {
          in_quote = false;
          ++i;
          continue;
        }
        raw += d;
        ++i;
        continue;
      }
      if (d == ' ' || d == '\t' || d == '\r' || d == '#') break;
      if (d == '"') {
        in_quote = true;
        quote_col = static_cast<int>(i) + 1;
        ++i;
        continue;
      }
      if (d == '=' && !t.has_eq) {
        t.has_eq = true;
        t.key = raw;
        t.value_column = static_cast<int>(i) + 2;
        raw += d;
        ++i;
        continue;
      }
      if (static_cast<unsigned char>(d) < 0x20 || d == 0x7f) {
        *error =
            fmt::format("control character 0x{:02x} in the layout", static_cast<unsigned char>(d));
        *col = static_cast<int>(i) + 1;
        return false;
      }
      raw += d;
      ++i;
    }
    if (in_quote) {
      *error = "unterminated quote";
      *col = quote_col;
      return false;
    }
    t.text = raw;
    if (t.has_eq) t.value = raw.substr(t.key.size() + 1);
    out->push_back(std::move(t));
  }
  return true;
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty() || s.size() > 24) return false;
  int dots = 0;
  for (char c : s) {
    if (c == '.') {
      if (++dots > 1) return false;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  if (s.front() == '.' || s.back() == '.') return false;
  *out = std::stod(std::string(s));
  return std::isfinite(*out);
}

std::optional<SizeBound> ParseBound(std::string_view s, std::string* error) {
  SizeBound b;
  if (s == "0") {
    b.kind = SizeBound::Kind::kBytes;
    return b;
  }
  if (!s.empty() && s.back() == '%') {
    double p;
    if (!ParseNumber(s.substr(0, s.size() - 1), &p)) {
      *error = fmt::format("\"{}\" is not a percentage", s);
      return std::nullopt;
    }
    if (p <= 0 || p > 100) {
      *error = fmt::format("{} is not a percentage between 0 and 100", s);
      return std::nullopt;
    }
    b.kind = SizeBound::Kind::kPercent;
    b.percent = p;
    return b;
  }
  size_t u = 0;
  while (u < s.size() && ((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) ++u;
  std::string_view num = s.substr(0, u), unit = s.substr(u);
  double n;
  if (!ParseNumber(num, &n)) {
    *error = fmt::format("\"{}\" is not a size (examples: 512M, 20G, 1.5T, 10%, 20G-50G, rest)", s);
    return std::nullopt;
  }
  uint64_t mult = 0;
  std::string lu = ToLower(unit);
  if (lu == "k" || lu == "kib")
    mult = 1ull << 10;
  else if (lu == "m" || lu == "mib")
    mult = 1ull << 20;
  else if (lu == "g" || lu == "gib")
    mult = 1ull << 30;
  else if (lu == "t" || lu == "tib")
    mult = 1ull << 40;
  if (mult == 0) {
    if (unit.empty())
      *error = fmt::format("size \"{}\" has no unit (use K, M, G or T: binary, 1M = 1024 KiB)", s);
    else if (lu == "kb" || lu == "mb" || lu == "gb" || lu == "tb")
      *error = fmt::format("unit \"{}\" in \"{}\" is decimal; kiln sizes are binary: write {}",
                           unit, s, unit.substr(0, 1));
    else
      *error =
          fmt::format("unknown unit \"{}\" in size \"{}\" (use K, M, G, T or KiB..TiB)", unit, s);
    return std::nullopt;
  }
  double bytes = n * static_cast<double>(mult);
  if (bytes >= 1.8e19) {
    *error = fmt::format("size \"{}\" is too large", s);
    return std::nullopt;
  }
  b.kind = SizeBound::Kind::kBytes;
  b.bytes = static_cast<uint64_t>(bytes);
  return b;
}

const std::set<std::string>& KnownFs() {
  static const std::set<std::string> fs = {"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "swap"};
  return fs;
}

bool IsMountPath(std::string_view m) {
  if (m.empty() || m.front() != '/') return false;
  if (m.size() > 1 && m.back() == '/') return false;
  for (const auto& seg : Split(m.substr(1), '/')) {
    if (m.size() == 1) break;
    if (seg.empty() || seg == "." || seg == "..") return false;
  }
  for (char c : m)
    if (c == ' ' || c == '\t' || c == ',' || c == '"' || c == '\\') return false;
  return true;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& file, Diagnostics* diags)
      : text_(text), file_(file), diags_(diags) {}

  DiskLayout Run() {
    DiskLayout layout;
    layout.file = file_;
    layout.text = std::string(text_);
    int lineno = 0;
    size_t start = 0;
    while (start <= text_.size()) {
      size_t nl = text_.find('\n', start);
      std::string_view line =
          text_.substr(start, nl == std::string_view::npos ? text_.npos : nl - start);
      ++lineno;
      ParseLine(line, lineno, &layout);
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    for (size_t i = 0; i < layout.disks.size(); ++i) FinishDisk(layout.disks[i], attempted_[i]);
    return layout;
  }

 private:
  void Error(int line, int col, std::string msg) {
    diags_->Add(MakeDiagnostic(file_, text_, line, col, std::move(msg)));
  }

  void ParseLine(std::string_view line, int lineno, DiskLayout* layout) {
    std::vector<Token> toks;
    std::string err;
    int col = 0;
    if (!Tokenize(line, &toks, &err, &col)) {
      if (StartsWith(Trim(line), "part") && !attempted_.empty()) ++attempted_.back();
      return Error(lineno, col, err);
    }
    if (toks.empty()) return;
    const Token& kind = toks[0];
    if (kind.text == "disk") return ParseDisk(toks, lineno, layout);
    if (kind.text == "part") {
      if (layout->disks.empty())
        return Error(lineno, kind.column, "part before any disk (start with: disk ROLE)");
      ++attempted_.back();
      return ParsePart(toks, lineno, &layout->disks.back());
    }
    if (kind.text == "raid" || kind.text == "vg" || kind.text == "lv" || kind.text == "luks" ||
        kind.text == "lvm")
      return Error(lineno, kind.column,
                   "\"" + kind.text + "\" is not supported yet (reserved for RAID, LVM and LUKS)");
    Error(lineno, kind.column, "unknown statement \"" + kind.text + "\" (expected disk or part)");
  }

  void ParseDisk(const std::vector<Token>& toks, int lineno, DiskLayout* layout) {
    DiskSpec d;
    d.loc = SourceLoc{file_, lineno, toks[0].column};
    if (toks.size() < 2 || toks[1].has_eq)
      return Error(
          lineno,
          toks.size() < 2 ? static_cast<int>(toks[0].text.size()) + toks[0].column : toks[1].column,
          "disk needs a role name: disk ROLE [on=...] [table=gpt|msdos]");
    d.role = toks[1].text;
    if (!IsClassName(d.role))
      return Error(lineno, toks[1].column, "disk role \"" + d.role + "\" is not an identifier");
    for (const auto& o : layout->disks)
      if (o.role == d.role)
        return Error(
            lineno, toks[1].column,
            fmt::format("disk role \"{}\" already defined at line {}", d.role, o.loc.line));
    for (size_t i = 2; i < toks.size(); ++i) {
      const Token& t = toks[i];
      if (!t.has_eq) {
        Error(lineno, t.column, "expected key=value, got \"" + t.text + "\"");
        continue;
      }
      if (t.key == "on") {
        std::string err;
        int col = t.value_column;
        if (!ParseSelector(t.value, &d.on, &err, &col)) Error(lineno, col, err);
      } else if (t.key == "table") {
        if (t.value != "gpt" && t.value != "msdos")
          Error(lineno, t.value_column, "table must be gpt or msdos, not \"" + t.value + "\"");
        else
          d.table = t.value;
      } else {
        Error(lineno, t.column, "unknown disk option \"" + t.key + "\" (expected on or table)");
      }
    }
    layout->disks.push_back(std::move(d));
    attempted_.push_back(0);
  }

  bool ParseSelector(const std::string& text, DiskSelector* sel, std::string* err, int* col) {
    sel->text = text;
    int pickers = 0;
    size_t off = 0;
    for (const auto& term : Split(text, ',')) {
      int here = *col + static_cast<int>(off);
      off += term.size() + 1;
      auto fail = [&](std::string m) {
        *err = std::move(m);
        *col = here;
        return false;
      };
      if (term.empty()) return fail("empty term in disk selector");
      if (auto n = ParseUint(term)) {
        if (*n == 0 || *n > 64) return fail("disk order must be 1..64, not " + term);
        sel->pick = DiskSelector::Pick::kNth;
        sel->nth = static_cast<int>(*n);
        ++pickers;
      } else if (term == "largest") {
        sel->pick = DiskSelector::Pick::kLargest;
        ++pickers;
      } else if (term == "smallest") {
        sel->pick = DiskSelector::Pick::kSmallest;
        ++pickers;
      } else if (term == "ssd") {
        sel->rotational = false;
      } else if (term == "hdd") {
        sel->rotational = true;
      } else if (term == "nvme" || term == "sata" || term == "sas" || term == "virtio" ||
                 term == "scsi") {
        sel->transport = term;
      } else if (StartsWith(term, "name:")) {
        sel->name = term.substr(5);
      } else if (StartsWith(term, "serial:")) {
        sel->serial = term.substr(7);
      } else if (StartsWith(term, "model:")) {
        sel->model = term.substr(6);
      } else if (StartsWith(term, "min:")) {
        std::string e;
        auto b = ParseBound(term.substr(4), &e);
        if (!b || b->kind != SizeBound::Kind::kBytes)
          return fail(b ? "min: takes a size in bytes, not a percentage" : e);
        sel->min_bytes = b->bytes;
      } else {
        return fail("unknown disk selector \"" + term +
                    "\" (use N, largest, smallest, ssd, hdd, nvme, sata, name:X, serial:X, "
                    "model:X, min:SIZE)");
      }
      if (pickers > 1) return fail("a disk selector picks one way only (N, largest or smallest)");
    }
    return true;
  }

  void ParsePart(const std::vector<Token>& toks, int lineno, DiskSpec* disk) {
    PartSpec p;
    p.loc = SourceLoc{file_, lineno, toks[0].column};
    if (toks.size() < 2 || toks[1].has_eq)
      return Error(
          lineno,
          toks.size() < 2 ? static_cast<int>(toks[0].text.size()) + toks[0].column : toks[1].column,
          "part needs a name: part NAME size=SIZE [fs=...] [mount=...]");
    p.name = toks[1].text;
    if (!IsClassName(p.name))
      return Error(lineno, toks[1].column,
                   "partition name \"" + p.name + "\" is not an identifier");
    for (const auto& o : disk->parts)
      if (o.name == p.name)
        return Error(
            lineno, toks[1].column,
            fmt::format("partition \"{}\" already defined at line {}", p.name, o.loc.line));
    bool have_size = false, have_type = false;
    int fs_col = 0, mount_col = 0, type_col = 0;
    for (size_t i = 2; i < toks.size(); ++i) {
      const Token& t = toks[i];
      if (!t.has_eq) {
        Error(lineno, t.column, "expected key=value, got \"" + t.text + "\"");
        continue;
      }
      const std::string& v = t.value;
      if (t.key == "size") {
        std::string err;
        auto s = ParseSize(v, &err);
        if (!s) {
          Error(lineno, t.value_column, err);
          return;
        }
        p.size = *s;
        have_size = true;
      } else if (t.key == "fs") {
        if (!KnownFs().count(v) && v != "none") {
          Error(lineno, t.value_column,
                "unknown filesystem \"" + v +
                    "\" (ext2, ext3, ext4, xfs, btrfs, vfat, swap or none)");
          return;
        }
        p.fs = v == "none" ? "" : v;
        fs_col = t.value_column;
      } else if (t.key == "mount") {
        if (!IsMountPath(v)) {
          Error(lineno, t.value_column, "mount point \"" + v + "\" is not a clean absolute path");
          return;
        }
        p.mount = v;
        mount_col = t.value_column;
      } else if (t.key == "options") {
        if (v.empty() || v.find_first_of(" \t") != std::string::npos) {
          Error(lineno, t.value_column,
                "mount options must be a comma-separated list without spaces");
          return;
        }
        p.options = v;
      } else if (t.key == "label") {
        p.label = v;
      } else if (t.key == "mkfs") {
        p.mkfs = v;
      } else if (t.key == "type") {
        type_col = t.value_column;
        have_type = true;
        if (v == "linux")
          p.type = PartType::kLinux;
        else if (v == "esp")
          p.type = PartType::kEsp;
        else if (v == "bios")
          p.type = PartType::kBios;
        else if (v == "swap")
          p.type = PartType::kSwap;
        else if (v == "raid" || v == "lvm" || v == "luks") {
          Error(lineno, t.value_column, "partition type \"" + v + "\" is not supported yet");
          return;
        } else {
          Error(lineno, t.value_column,
                "unknown partition type \"" + v + "\" (linux, esp, bios or swap)");
          return;
        }
      } else {
        Error(lineno, t.column,
              "unknown partition option \"" + t.key +
                  "\" (size, fs, mount, options, label, mkfs, type)");
        return;
      }
    }
    if (!have_size)
      return Error(lineno, toks[1].column, "partition \"" + p.name + "\" has no size=");
    // Types and filesystems imply each other where there is one sensible choice.
    if (p.fs == "swap" && !have_type) p.type = PartType::kSwap;
    if (p.type == PartType::kSwap && p.fs.empty()) p.fs = "swap";
    if (p.type == PartType::kEsp && p.fs.empty() && fs_col == 0) p.fs = "vfat";
    if (p.type == PartType::kEsp && p.fs != "vfat")
      return Error(lineno, fs_col ? fs_col : type_col, "an EFI system partition must be fs=vfat");
    if (p.type == PartType::kBios && (!p.fs.empty() || !p.mount.empty()))
      return Error(lineno, fs_col ? fs_col : mount_col,
                   "a BIOS boot partition holds GRUB's core image: no fs and no mount");
    if (p.type == PartType::kSwap && p.fs != "swap")
      return Error(lineno, fs_col, "a swap partition must be fs=swap");
    if (p.fs == "swap" && p.type != PartType::kSwap)
      return Error(lineno, type_col, "fs=swap needs type=swap");
    if (!p.mount.empty() && (p.fs.empty() || p.fs == "swap"))
      return Error(lineno, mount_col, "mount point " + p.mount + " needs a filesystem (fs=...)");
    if (!p.options.empty() && p.mount.empty() && p.fs != "swap")
      return Error(lineno, toks[1].column, "options= without a mount point");
    if (p.label.size() > 16)
      return Error(lineno, toks[1].column,
                   "filesystem label \"" + p.label + "\" is longer than 16 bytes");
    disk->parts.push_back(std::move(p));
  }

  // Checks that need the whole disk statement.
  void FinishDisk(const DiskSpec& d, int attempted) {
    if (d.parts.empty()) {
      if (attempted > 0) return;  // its part lines have errors of their own
      diags_->Add(MakeDiagnostic(file_, text_, d.loc.line, d.loc.column,
                                 "disk " + d.role + " has no partitions"));
      return;
    }
    const PartSpec* grower = nullptr;
    double percent = 0;
    for (const auto& p : d.parts) {
      auto err = [&](const std::string& m) {
        diags_->Add(MakeDiagnostic(file_, text_, p.loc.line, p.loc.column, m));
      };
      if (p.size.Unbounded()) {
        if (grower)
          err(
              fmt::format("partitions \"{}\" (line {}) and \"{}\" both grow without limit; only "
                          "one per disk may (rest or SIZE-)",
                          grower->name, grower->loc.line, p.name));
        grower = &p;
      }
      if (p.size.min.kind == SizeBound::Kind::kPercent) percent += p.size.min.percent;
      if (d.table == "msdos" && p.type == PartType::kBios)
        err("a BIOS boot partition is for GPT disks; msdos disks boot from the MBR gap");
    }
    if (percent > 100.0 + 1e-9)
      diags_->Add(MakeDiagnostic(
          file_, text_, d.loc.line, d.loc.column,
          fmt::format("disk {}: the partitions ask for {}% of the disk", d.role, percent)));
    if (d.table == "msdos" && d.parts.size() > 4)
      diags_->Add(MakeDiagnostic(
          file_, text_, d.parts[4].loc.line, d.parts[4].loc.column,
          "an msdos table holds at most 4 partitions here (no logical partitions); use table=gpt"));
  }

  std::string_view text_;
  const std::string& file_;
  Diagnostics* diags_;
  std::vector<int> attempted_;  // part lines seen, per disk
};

}  // namespace

uint64_t SizeBound::Resolve(uint64_t usable) const {
  switch (kind) {
    case Kind::kNone: return 0;
    case Kind::kBytes: return bytes;
    case Kind::kPercent: {
      auto b = static_cast<uint64_t>(static_cast<double>(usable) * percent / 100.0);
      return b / kMiB * kMiB;
    }
  }
  return 0;
}

std::string SizeBound::ToString() const {
  switch (kind) {
    case Kind::kNone: return "";
    case Kind::kBytes: return HumanBytes(bytes);
    case Kind::kPercent: return fmt::format("{}%", percent);
  }
  return "";
}

std::optional<SizeSpec> ParseSize(std::string_view text, std::string* error) {
  SizeSpec s;
  s.text = std::string(text);
  if (text == "rest") {
    s.kind = SizeSpec::Kind::kRest;
    s.min.kind = SizeBound::Kind::kBytes;
    return s;
  }
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    auto b = ParseBound(text, error);
    if (!b) return std::nullopt;
    if (b->kind == SizeBound::Kind::kBytes && b->bytes == 0) {
      *error = "a partition cannot be 0 bytes";
      return std::nullopt;
    }
    s.min = *b;
    return s;
  }
  if (dash == 0) {
    *error = fmt::format("range \"{}\" needs a minimum (write 0-{} for \"up to\")", text,
                         text.substr(1));
    return std::nullopt;
  }
  s.kind = SizeSpec::Kind::kRange;
  auto lo = ParseBound(text.substr(0, dash), error);
  if (!lo) return std::nullopt;
  s.min = *lo;
  std::string_view hi_text = text.substr(dash + 1);
  if (!hi_text.empty()) {
    auto hi = ParseBound(hi_text, error);
    if (!hi) return std::nullopt;
    s.max = *hi;
    if (s.min.kind == s.max.kind &&
        ((s.min.kind == SizeBound::Kind::kBytes && s.min.bytes > s.max.bytes) ||
         (s.min.kind == SizeBound::Kind::kPercent && s.min.percent > s.max.percent))) {
      *error = fmt::format("range \"{}\" has its minimum above its maximum", text);
      return std::nullopt;
    }
  }
  return s;
}

std::string_view PartTypeName(PartType t) {
  switch (t) {
    case PartType::kLinux: return "linux";
    case PartType::kEsp: return "esp";
    case PartType::kBios: return "bios";
    case PartType::kSwap: return "swap";
  }
  return "linux";
}

DiskLayout ParseDiskLayout(std::string_view text, const std::string& file, Diagnostics* diags) {
  return Parser(text, file, diags).Run();
}

}  // namespace kiln::classes
