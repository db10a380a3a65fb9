#pragma once
// Builds small config spaces in a temporary directory for the classes tests.

#include <map>
#include <string>

#include "classes/resolver.h"
#include "classes/space.h"
#include "tests/support/temp_dir.h"

namespace kiln::test {

// A space holding exactly `files` (path -> content); classes.list defaults
// to declaring WEB, DB, GPU, EXTRA unless given.
class SpaceBuilder {
 public:
  using Files = std::map<std::string, std::string>;
  explicit SpaceBuilder(std::initializer_list<Files::value_type> files)
      : SpaceBuilder(Files(files)) {}
  explicit SpaceBuilder(Files files);
  const std::string& dir() const { return tmp_.path(); }
  // Loads; REQUIREs success.
  std::shared_ptr<const classes::Space> Load() const;
  // Loads and returns the rendered diagnostics ("" when it loads).
  std::string Problems() const;
  // Every problem, one line each.
  std::string OneLines() const;

 private:
  TempDir tmp_;
};

// A node with one 100 GiB disk and UEFI.
classes::NodeRecord TestNode(const std::string& host = "web01");

// Resolves; returns the rendered error, or "" and fills *plan.
std::string ResolveError(const classes::Resolver& r, const classes::NodeRecord& n,
                         classes::Plan* plan = nullptr, bool explain = false);

}  // namespace kiln::test
