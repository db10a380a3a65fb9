#pragma once
// Resolves a node's plan against a loaded config space.
//
// Order of classes: DEFAULT; the classes the rules add, rule files in name
// order; the classes in hosts/<hostname>; the node record's explicit
// classes; the hostname; LAST. A class appears once, at the place it was
// first added; a later rule may remove an earlier class (not DEFAULT).
// Later classes win: for variables (vars/<CLASS>.lua run in class order and
// see earlier values), for files (files/<path>/<CLASS>, the highest class
// that has one), and for disk roles (disk_resolve.h). Scripts and hooks of
// every class run, in class order.
//
// Thread safety: Resolve may be called from many threads at once. Each
// call borrows a Lua sandbox (with the space's chunks compiled) from a
// pool; the pool grows to the number of concurrent callers.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "classes/diagnostic.h"
#include "classes/lua_sandbox.h"
#include "classes/node.h"
#include "classes/plan.h"
#include "classes/space.h"

namespace kiln::classes {

struct ResolveOptions {
  bool explain = false;  // record every decision in Plan::explain
};

class Resolver {
 public:
  explicit Resolver(std::shared_ptr<const Space> space, SandboxLimits limits = {});
  ~Resolver();

  // False with *err (file, line, caret) when the space cannot make a plan
  // for this node: a rule failed, a variable is bad, the disks do not fit.
  bool Resolve(const NodeRecord& node, const ResolveOptions& opts, Plan* plan,
               Diagnostic* err) const;
  // The same as a Result; the status message is the rendered diagnostic.
  Result<Plan> Resolve(const NodeRecord& node, const ResolveOptions& opts = {}) const;

  const Space& space() const { return *space_; }
  const std::shared_ptr<const Space>& space_ptr() const { return space_; }
  // Sandboxes created so far and the bytes their Lua states hold.
  size_t sandboxes() const;
  size_t lua_bytes() const;

 private:
  struct Evaluator;
  std::unique_ptr<Evaluator> Acquire() const;
  void Release(std::unique_ptr<Evaluator> e) const;

  std::shared_ptr<const Space> space_;
  SandboxLimits limits_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<Evaluator>> idle_;
  mutable size_t created_ = 0;
};

}  // namespace kiln::classes
