#pragma once
// A config space loaded from disk (layout in docs/CLASSES.md):
//
//   classes.list           every class, one per line, with a description
//   class/*.lua            rules: from a node's facts, add and remove classes
//   hosts/<hostname>       classes named for one host
//   vars/<CLASS>.lua       variables; a later class overrides an earlier one
//   files/<path>/<CLASS>   the file installed at /<path> (highest class wins)
//   files/<path>/<CLASS>.attrs   owner=, group=, mode=, subst=yes
//   scripts/<CLASS>/NN-*   run in class order, then name order
//   hooks/<phase>.<CLASS>  run before an install phase
//   disk/<CLASS>           the disk layout language (disk_layout.h)
//
// Loading reads and checks everything that does not depend on a node:
// names, syntax of Lua and layouts, attributes, that every class a file is
// named after exists. It reports every problem, not just the first. A Space
// is immutable once loaded and shared (shared_ptr<const Space>) by every
// plan resolved against it, so a reload never disturbs a plan in flight.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "classes/diagnostic.h"
#include "classes/disk_layout.h"

namespace kiln::classes {

// Install phases a hook can run before, in the order the agent runs them.
const std::vector<std::string>& HookPhases();

struct ClassDecl {
  std::string name;
  std::string description;
  SourceLoc loc;
};

struct LuaFile {
  std::string file;  // "class/10-tier.lua"
  std::string source;
};

struct HostEntry {
  std::string cls;
  SourceLoc loc;
};

struct FileVariant {
  std::string cls;
  std::string file;  // "files/etc/motd/WEB"
  std::string content;
  std::string sha256;  // of content, computed once at load
  bool utf8 = true;
  std::string owner = "root";
  std::string group = "root";
  mode_t mode = 0644;
  bool subst = false;   // ${VAR} substitution
  SourceLoc attrs_loc;  // where owner/mode/subst were set, if anywhere
};

struct SpaceFile {
  std::string target;  // "/etc/motd"
  std::map<std::string, FileVariant> by_class;
};

struct ScriptFile {
  std::string cls;
  std::string name;  // "10-nginx"
  std::string file;  // "scripts/WEB/10-nginx"
  std::string content;
  std::string sha256;
  bool utf8 = true;
};

struct HookFile {
  std::string phase;
  std::string cls;
  std::string file;  // "hooks/partition.DB"
  std::string content;
  std::string sha256;
  bool utf8 = true;
};

// Limits that keep a space (and the plans built from it) small.
inline constexpr size_t kMaxSpaceFileBytes = 1u << 20;
inline constexpr size_t kMaxSpaceBytes = 64u << 20;

struct Space {
  std::string dir;
  std::string digest;  // SHA-256 over every path and content: names this version
  std::map<std::string, ClassDecl> declared;  // includes DEFAULT and LAST
  std::vector<LuaFile> rules;                 // in file-name order
  std::map<std::string, std::vector<HostEntry>> hosts;
  std::map<std::string, LuaFile> vars;                     // by class
  std::map<std::string, DiskLayout> disks;                 // by class
  std::map<std::string, SpaceFile> files;                  // by target path
  std::map<std::string, std::vector<ScriptFile>> scripts;  // by class, name order
  std::map<std::string, std::vector<HookFile>> hooks;      // by class, phase order
  size_t total_bytes = 0;

  // A class is known if classes.list declares it or it is a host in hosts/.
  bool Known(const std::string& cls) const { return declared.count(cls) || hosts.count(cls); }
};

// Loads dir. Every problem goes to *diags; the Space is returned only when
// there are none.
std::shared_ptr<const Space> LoadSpace(const std::string& dir, Diagnostics* diags);

// A cheap fingerprint of the files under dir (names, sizes, mtimes, inodes),
// to notice edits without reading every file.
std::string SpaceFingerprint(const std::string& dir);

}  // namespace kiln::classes
