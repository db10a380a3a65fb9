#pragma once
// `kiln config check`: loads a whole config space and resolves plans for
// sample nodes, reporting every problem at once with file:line.
//
// Samples: the facts files given (a file or a directory of *.json; the
// file name without .json is the hostname), or, when none are given, a
// built-in node with two disks (480 GiB SSD, 4 TiB HDD), 64 GiB and UEFI.
// Every sample is resolved as itself, and then once per declared class
// with that class forced on (as an explicit class), so that every rule,
// variable file, layout and file template runs at least once. Every host
// in hosts/ is resolved with the first sample's facts.

#include <string>
#include <vector>

#include "classes/diagnostic.h"
#include "classes/lua_sandbox.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::classes {

struct CheckReport {
  Diagnostics problems;
  // For each problem (same index): which sample node hit it.
  std::vector<std::string> contexts;
  int plans = 0;  // plans resolved (good or not)
  int classes = 0, rules = 0, files = 0;
  std::string digest;
};

// The built-in sample's facts.
Json SampleFacts();

// Errors in reading the sample files themselves come back as a Status.
Result<CheckReport> CheckSpace(const std::string& dir, const std::vector<std::string>& fact_paths,
                               SandboxLimits limits = {});

}  // namespace kiln::classes
