#pragma once
// Installs a plan's class files (plan["files"]: path, content, encoding,
// owner, group, mode) into the target root. Owners and groups are names in
// the TARGET's /etc/passwd and /etc/group (the installed system's, not the
// install environment's), or numbers. Paths are resolved one component at
// a time under the root without following symlinks (imager::Tree), so a
// hostile image or plan can never make the agent write outside the root;
// missing parent directories are made (root:root 0755). Each file is
// written to a temporary name, given its owner and mode, fsync'd and
// renamed into place.

#include <functional>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct InstalledFiles {
  size_t files = 0;
  uint64_t bytes = 0;
};

// Errors name the file (its path and the class file it came from) and the
// field or step that failed; files before it stay installed.
Result<InstalledFiles> InstallFiles(const std::string& root, const Json& files,
                                    const std::function<void(const std::string&)>& log = nullptr);

// Looks a user (passwd) or group (group) name up in a file of the target;
// digits are taken as the id. kNotFound names the file.
Result<unsigned> LookupId(const std::string& db_text, const std::string& db_name,
                          const std::string& name);

}  // namespace kiln::agent
