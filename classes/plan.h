#pragma once
// A node's plan: what kiln decided the node becomes, and why.
//
// PlanToJson gives the JSON form that the agent consumes (the contract is
// documented in docs/CLASSES.md "The plan" and docs/API.md): kind
// "kiln.plan", version 1. Fields are only ever added; a consumer ignores
// fields it does not know.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "classes/diagnostic.h"
#include "classes/disk_resolve.h"
#include "common/json.h"

namespace kiln::classes {

inline constexpr int kPlanVersion = 1;

// Something a lower class had that a higher one replaced.
struct Replaced {
  std::string cls;
  SourceLoc loc;
  Json value;  // for variables; null otherwise
};

// One decision, for --explain: what was decided, by which class and line.
struct Decision {
  std::string what;     // class, variable, image, disk, file, script, hook, output
  std::string subject;  // the class, variable, mount, path or role decided on
  std::string action;   // added, removed, kept, set, unset, chose, installs, runs, printed
  Json value;           // the value or a short description (may be null)
  std::string cls;      // the class that made the decision ("" for kiln's own)
  SourceLoc loc;
  std::string line_text;  // the source line, when it tells the story
  std::vector<Replaced> overrode;
  std::string note;  // why, in words, when there is no source line
};

struct PlanVar {
  Json value;
  std::string cls;
  SourceLoc loc;
  std::vector<Replaced> overrode;
};

struct PlanImage {
  std::string ref;      // as written: "web@3"
  std::string name;     // "web"
  std::string version;  // "3", a tag, or "" for the image's current version
  std::string cls;
  SourceLoc loc;
};

struct PlanFile {
  std::string path;  // target, "/etc/motd"
  std::string cls;
  std::string source;  // "files/etc/motd/WEB"
  std::string owner, group;
  mode_t mode = 0644;
  bool substituted = false;
  std::string content;
  std::string sha256;  // of content
  bool utf8 = true;    // content is UTF-8 text (else it travels as base64)
  std::vector<Replaced> overrode;
};

struct PlanScript {
  std::string cls, name, source, content, sha256;
  bool utf8 = true;
};

struct PlanHook {
  std::string phase, cls, source, content, sha256;
  bool utf8 = true;
};

struct Plan {
  std::string node_id, hostname;
  std::vector<std::string> macs;
  std::string space_dir, space_digest;
  std::vector<std::string> classes;
  std::map<std::string, PlanVar> vars;
  std::optional<PlanImage> image;
  std::vector<ResolvedDisk> disks;
  std::vector<PlanFile> files;
  std::vector<PlanScript> scripts;
  std::vector<PlanHook> hooks;
  std::vector<Decision> explain;  // filled only when asked for
};

// The plan as JSON. With explain, adds "explain": [decisions].
Json PlanToJson(const Plan& plan, bool explain);

// Parses an image reference "name" or "name@version". False if malformed.
bool ParseImageRef(const std::string& ref, std::string* name, std::string* version);

}  // namespace kiln::classes
