#include "classes/space.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "classes/lua_sandbox.h"
#include "classes/names.h"
#include "common/file_util.h"
#include "common/hash.h"
#include "common/strings.h"

namespace fs = std::filesystem;

namespace kiln::classes {

const std::vector<std::string>& HookPhases() {
  static const std::vector<std::string> phases = {"partition", "format",  "mount",      "image",
                                                  "files",     "scripts", "bootloader", "finish"};
  return phases;
}

namespace {

bool Ignored(const std::string& name) {
  return name.empty() || name[0] == '.' || name.back() == '~';
}

// Sorted names of the entries of dir (ignoring dotfiles and backups), or
// empty when dir does not exist.
std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!Ignored(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsDir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool IsRegular(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

class Loader {
 public:
  Loader(const std::string& dir, Diagnostics* diags) : dir_(dir), diags_(diags) {}

  std::shared_ptr<const Space> Run() {
    auto space = std::make_shared<Space>();
    space_ = space.get();
    space_->dir = dir_;
    if (!IsDir(dir_)) {
      diags_->Add(PlainDiagnostic(dir_, "config space not found (not a directory)"));
      return nullptr;
    }
    for (const auto& name : {kDefaultClass, kLastClass})
      space_->declared[std::string(name)] = {
          std::string(name), name == kDefaultClass ? "every node, first" : "every node, last", {}};
    LoadClassList();
    LoadHosts();
    LoadRules();
    LoadVars();
    LoadDisks();
    LoadFiles();
    LoadScripts();
    LoadHooks();
    if (space_->total_bytes > kMaxSpaceBytes)
      diags_->Add(PlainDiagnostic(
          "", fmt::format("the config space holds {} of files; the limit is {}",
                          HumanBytes(space_->total_bytes), HumanBytes(kMaxSpaceBytes))));
    std::string all;
    for (const auto& [path, digest] : digests_) all += path + '\0' + digest + '\n';
    space_->digest = Sha256Hex(all);
    if (!diags_->empty()) return nullptr;
    return space;
  }

 private:
  std::string Path(const std::string& rel) const { return dir_ + "/" + rel; }

  // Reads a space file; nullopt (with a diagnostic) if unreadable or too big.
  std::optional<std::string> Read(const std::string& rel) {
    std::string p = Path(rel);
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      diags_->Add(PlainDiagnostic(rel, "cannot read: " + std::string(strerror(errno))));
      return std::nullopt;
    }
    if (static_cast<size_t>(st.st_size) > kMaxSpaceFileBytes) {
      diags_->Add(PlainDiagnostic(
          rel, fmt::format("is {}; files in a config space are at most {}", HumanBytes(st.st_size),
                           HumanBytes(kMaxSpaceFileBytes))));
      return std::nullopt;
    }
    auto text = ReadFile(p);
    if (!text.ok()) {
      diags_->Add(PlainDiagnostic(rel, text.status().message()));
      return std::nullopt;
    }
    space_->total_bytes += text->size();
    digests_[rel] = Sha256Hex(*text);
    return *text;
  }

  void Error(const std::string& rel, std::string msg) {
    diags_->Add(PlainDiagnostic(rel, std::move(msg)));
  }

  // The class a file is named after must exist.
  bool CheckClass(const std::string& rel, const std::string& cls) {
    if (IsClassName(cls) || IsHostName(cls)) {
      if (space_->Known(cls)) return true;
      Error(rel, fmt::format("class {} does not exist (declare it in classes.list{})", cls,
                             IsHostName(cls) ? ", or add hosts/" + cls : ""));
      return false;
    }
    Error(rel,
          fmt::format("\"{}\" is not a class name (an identifier, or a hostname with hosts/{})",
                      cls, cls));
    return false;
  }

  bool Compiles(const LuaFile& f) {
    Diagnostic err;
    if (lua_.Compile(f.file, f.source, &err) >= 0) return true;
    diags_->Add(std::move(err));
    return false;
  }

  void LoadClassList() {
    const std::string rel = "classes.list";
    if (!IsRegular(Path(rel))) {
      Error(rel, "missing: every class must be declared here (NAME description, one per line)");
      return;
    }
    auto text = Read(rel);
    if (!text) return;
    auto lines = Split(*text, '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string_view line = lines[i];
      if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
      std::string_view t = Trim(line);
      if (t.empty()) continue;
      int lineno = static_cast<int>(i) + 1;
      int col = static_cast<int>(t.data() - lines[i].data()) + 1;
      size_t sp = t.find_first_of(" \t");
      std::string name(t.substr(0, sp));
      std::string desc(sp == std::string_view::npos ? "" : Trim(t.substr(sp)));
      if (!IsClassName(name)) {
        diags_->Add(
            MakeDiagnostic(rel, *text, lineno, col,
                           fmt::format("\"{}\" is not a class name (letters, digits and _, not "
                                       "starting with a digit, at most {})",
                                       name, kMaxNameLength)));
        continue;
      }
      auto it = space_->declared.find(name);
      if (it != space_->declared.end() && it->second.loc.known()) {
        diags_->Add(MakeDiagnostic(
            rel, *text, lineno, col,
            fmt::format("class {} is already declared at line {}", name, it->second.loc.line)));
        continue;
      }
      space_->declared[name] = {name, desc, {rel, lineno, col}};
    }
  }

  void LoadHosts() {
    for (const auto& host : List(Path("hosts"))) {
      std::string rel = "hosts/" + host;
      if (!IsHostName(host)) {
        Error(rel, "\"" + host + "\" is not a short lower-case hostname ([a-z0-9-], at most 63)");
        continue;
      }
      if (space_->declared.count(host)) {
        Error(rel, "hostname " + host + " is also a declared class");
        continue;
      }
      auto text = Read(rel);
      if (!text) continue;
      auto& entries = space_->hosts[host];
      auto lines = Split(*text, '\n');
      for (size_t i = 0; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        size_t pos = 0;
        while (pos < line.size()) {
          size_t b = line.find_first_not_of(" \t\r", pos);
          if (b == std::string_view::npos) break;
          size_t e = line.find_first_of(" \t\r", b);
          if (e == std::string_view::npos) e = line.size();
          std::string cls(line.substr(b, e - b));
          int lineno = static_cast<int>(i) + 1, col = static_cast<int>(b) + 1;
          if (!IsClassName(cls))
            diags_->Add(
                MakeDiagnostic(rel, *text, lineno, col, "\"" + cls + "\" is not a class name"));
          else if (!space_->declared.count(cls))
            diags_->Add(
                MakeDiagnostic(rel, *text, lineno, col,
                               "class " + cls + " does not exist (declare it in classes.list)"));
          else
            entries.push_back({cls, {rel, lineno, col}});
          pos = e;
        }
      }
    }
  }

  void LoadRules() {
    for (const auto& name : List(Path("class"))) {
      std::string rel = "class/" + name;
      if (!EndsWith(name, ".lua") || !IsRegular(Path(rel))) {
        Error(rel, "rules are Lua files: class/NN-name.lua");
        continue;
      }
      std::string stem = name.substr(0, name.size() - 4);
      bool ok = !stem.empty() && stem.size() <= kMaxNameLength;
      for (char c : stem)
        ok =
            ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
      if (!ok) {
        Error(rel,
              fmt::format(
                  "rule file names use letters, digits, '-', '_' and '.' (at most {} before .lua)",
                  kMaxNameLength));
        continue;
      }
      auto text = Read(rel);
      if (!text) continue;
      LuaFile f{rel, *text};
      if (Compiles(f)) space_->rules.push_back(std::move(f));
    }
  }

  void LoadVars() {
    for (const auto& name : List(Path("vars"))) {
      std::string rel = "vars/" + name;
      if (!EndsWith(name, ".lua")) {
        Error(rel, "variable files are Lua files: vars/CLASS.lua");
        continue;
      }
      std::string cls = name.substr(0, name.size() - 4);
      if (!CheckClass(rel, cls)) continue;
      auto text = Read(rel);
      if (!text) continue;
      LuaFile f{rel, *text};
      if (Compiles(f)) space_->vars[cls] = std::move(f);
    }
  }

  void LoadDisks() {
    for (const auto& cls : List(Path("disk"))) {
      std::string rel = "disk/" + cls;
      if (!CheckClass(rel, cls)) continue;
      auto text = Read(rel);
      if (!text) continue;
      Diagnostics d;
      DiskLayout layout = ParseDiskLayout(*text, rel, &d);
      if (!d.empty()) {
        diags_->Append(d);
        continue;
      }
      if (layout.disks.empty()) {
        Error(rel, "no disk statements (an empty layout: remove the file instead)");
        continue;
      }
      space_->disks[cls] = std::move(layout);
    }
  }

  void ParseAttrs(const std::string& rel, const std::string& text, FileVariant* v) {
    auto lines = Split(text, '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string_view line = lines[i];
      if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
      size_t pos = 0;
      int lineno = static_cast<int>(i) + 1;
      while (pos < line.size()) {
        size_t b = line.find_first_not_of(" \t\r", pos);
        if (b == std::string_view::npos) break;
        size_t e = line.find_first_of(" \t\r", b);
        if (e == std::string_view::npos) e = line.size();
        std::string tok(line.substr(b, e - b));
        int col = static_cast<int>(b) + 1;
        pos = e;
        auto err = [&](const std::string& m) {
          diags_->Add(MakeDiagnostic(rel, text, lineno, col, m));
        };
        size_t eq = tok.find('=');
        if (eq == std::string::npos) {
          err("expected key=value (owner=, group=, mode=, subst=)");
          continue;
        }
        std::string key = tok.substr(0, eq), val = tok.substr(eq + 1);
        auto name_ok = [](const std::string& s) {
          if (s.empty() || s.size() > 32) return false;
          if (ParseUint(s)) return true;
          for (size_t k = 0; k < s.size(); ++k) {
            char c = s[k];
            bool ok = (c >= 'a' && c <= 'z') || c == '_' ||
                      (k > 0 && ((c >= '0' && c <= '9') || c == '-'));
            if (!ok) return false;
          }
          return true;
        };
        if (key == "owner" || key == "group") {
          if (!name_ok(val)) {
            err("\"" + val + "\" is not a user or group name or number");
            continue;
          }
          (key == "owner" ? v->owner : v->group) = val;
        } else if (key == "mode") {
          bool octal = !val.empty() && val.size() <= 4;
          unsigned m = 0;
          for (char c : val) {
            octal = octal && c >= '0' && c <= '7';
            m = m * 8 + static_cast<unsigned>(c - '0');
          }
          if (!octal) {
            err("mode \"" + val + "\" is not an octal mode like 0644");
            continue;
          }
          v->mode = static_cast<mode_t>(m);
        } else if (key == "subst") {
          if (val != "yes" && val != "no") {
            err("subst is yes or no");
            continue;
          }
          v->subst = val == "yes";
        } else {
          err("unknown attribute \"" + key + "\" (owner, group, mode, subst)");
          continue;
        }
        if (!v->attrs_loc.known()) v->attrs_loc = {rel, lineno, col};
      }
    }
  }

  void LoadFiles() {
    std::string root = Path("files");
    if (!IsDir(root)) return;
    std::vector<std::string> stack = {""};
    while (!stack.empty()) {
      std::string sub = stack.back();
      stack.pop_back();
      std::string dir = sub.empty() ? root : root + "/" + sub;
      std::vector<std::string> files, dirs;
      for (const auto& name : List(dir)) {
        std::string p = dir + "/" + name;
        std::error_code ec;
        auto st = fs::symlink_status(p, ec);
        if (fs::is_directory(st))
          dirs.push_back(name);
        else if (fs::is_regular_file(fs::status(p, ec)))
          files.push_back(name);
        else
          Error("files/" + (sub.empty() ? "" : sub + "/") + name,
                "neither a regular file nor a directory");
      }
      std::string rel_dir = "files" + (sub.empty() ? "" : "/" + sub);
      if (!files.empty() && !dirs.empty()) {
        Error(rel_dir, "holds both class files and subdirectories; /" + sub +
                           " cannot be a file and a directory");
        files.clear();  // still look into the subdirectories
      }
      if (!files.empty() && sub.empty()) {
        Error("files/" + files.front(),
              "files/ holds directories named after target paths: files/etc/motd/CLASS");
        continue;
      }
      for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
        stack.push_back(sub.empty() ? *it : sub + "/" + *it);
      if (files.empty()) continue;
      SpaceFile sf;
      sf.target = "/" + sub;
      for (const auto& name : files) {
        if (EndsWith(name, ".attrs")) continue;
        std::string rel = rel_dir + "/" + name;
        if (!CheckClass(rel, name)) continue;
        auto text = Read(rel);
        if (!text) continue;
        FileVariant v;
        v.cls = name;
        v.file = rel;
        v.content = std::move(*text);
        v.sha256 = digests_[rel];
        v.utf8 = IsUtf8(v.content);
        struct stat st {};
        if (::stat(Path(rel).c_str(), &st) == 0 && (st.st_mode & 0111)) v.mode = 0755;
        sf.by_class[name] = std::move(v);
      }
      for (const auto& name : files) {
        if (!EndsWith(name, ".attrs")) continue;
        std::string rel = rel_dir + "/" + name;
        std::string cls = name.substr(0, name.size() - 6);
        auto it = sf.by_class.find(cls);
        if (it == sf.by_class.end()) {
          if (std::find(files.begin(), files.end(), cls) == files.end())
            Error(rel, "attributes for " + rel_dir + "/" + cls + ", which does not exist");
          continue;
        }
        auto text = Read(rel);
        if (text) ParseAttrs(rel, *text, &it->second);
      }
      if (!sf.by_class.empty()) space_->files[sf.target] = std::move(sf);
    }
  }

  void LoadScripts() {
    for (const auto& cls : List(Path("scripts"))) {
      std::string rel_dir = "scripts/" + cls;
      if (!IsDir(Path(rel_dir))) {
        Error(rel_dir, "scripts live in a directory per class: scripts/CLASS/NN-name");
        continue;
      }
      if (!CheckClass(rel_dir, cls)) continue;
      for (const auto& name : List(Path(rel_dir))) {
        std::string rel = rel_dir + "/" + name;
        bool ok = name.size() > 3 && std::isdigit(static_cast<unsigned char>(name[0])) &&
                  std::isdigit(static_cast<unsigned char>(name[1])) && name[2] == '-';
        for (char c : name)
          ok = ok &&
               (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
        if (!ok) {
          Error(
              rel,
              "script names are NN-name (two digits, a dash, then letters, digits, '-', '_', '.')");
          continue;
        }
        if (!IsRegular(Path(rel))) {
          Error(rel, "not a regular file");
          continue;
        }
        auto text = Read(rel);
        if (text) {
          bool utf8 = IsUtf8(*text);
          space_->scripts[cls].push_back({cls, name, rel, std::move(*text), digests_[rel], utf8});
        }
      }
    }
  }

  void LoadHooks() {
    for (const auto& name : List(Path("hooks"))) {
      std::string rel = "hooks/" + name;
      size_t dot = name.find('.');
      if (dot == std::string::npos) {
        Error(rel, "hook names are PHASE.CLASS, e.g. partition.DB");
        continue;
      }
      std::string phase = name.substr(0, dot), cls = name.substr(dot + 1);
      const auto& phases = HookPhases();
      if (std::find(phases.begin(), phases.end(), phase) == phases.end()) {
        std::string list;
        for (const auto& p : phases) list += (list.empty() ? "" : ", ") + p;
        Error(rel, "unknown phase \"" + phase + "\" (phases: " + list + ")");
        continue;
      }
      if (!CheckClass(rel, cls)) continue;
      if (!IsRegular(Path(rel))) {
        Error(rel, "not a regular file");
        continue;
      }
      auto text = Read(rel);
      if (text) {
        bool utf8 = IsUtf8(*text);
        space_->hooks[cls].push_back({phase, cls, rel, std::move(*text), digests_[rel], utf8});
      }
    }
    for (auto& [cls, list] : space_->hooks) {
      const auto& phases = HookPhases();
      std::stable_sort(list.begin(), list.end(), [&](const HookFile& a, const HookFile& b) {
        return std::find(phases.begin(), phases.end(), a.phase) <
               std::find(phases.begin(), phases.end(), b.phase);
      });
    }
  }

  std::string dir_;
  Diagnostics* diags_;
  Space* space_ = nullptr;
  std::map<std::string, std::string> digests_;
  LuaSandbox lua_;  // syntax checks only
};

}  // namespace

std::shared_ptr<const Space> LoadSpace(const std::string& dir, Diagnostics* diags) {
  return Loader(dir, diags).Run();
}

std::string SpaceFingerprint(const std::string& dir) {
  std::vector<std::string> entries;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    std::string p = it->path().string();
    if (::stat(p.c_str(), &st) != 0) continue;
    entries.push_back(fmt::format("{} {} {} {}.{} {}", p, st.st_size, st.st_ino, st.st_mtim.tv_sec,
                                  st.st_mtim.tv_nsec, st.st_mode));
  }
  if (ec) entries.push_back("error " + ec.message());
  std::sort(entries.begin(), entries.end());
  std::string all;
  for (const auto& e : entries) all += e + "\n";
  return Sha256Hex(all);
}

}  // namespace kiln::classes
