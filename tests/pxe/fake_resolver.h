#pragma once
// A hand-written BootResolver for pxe tests: answers from a map and
// records every question.

#include <map>
#include <mutex>
#include <vector>

#include "pxe/boot_resolver.h"

namespace kiln::test {

class FakeResolver : public pxe::BootResolver {
 public:
  std::map<std::string, pxe::BootDecision> known;  // by MAC "52:54:00:.."
  std::vector<pxe::BootQuery> asked;
  Status fail;  // when not OK, every Resolve returns it

  Result<pxe::BootDecision> Resolve(const pxe::BootQuery& q) override {
    std::lock_guard lock(mu_);
    asked.push_back(q);
    if (!fail.ok()) return fail;
    auto it = known.find(q.mac.ToString());
    if (it != known.end()) return it->second;
    pxe::BootDecision d;
    d.target = pxe::BootTarget::kDiscover;
    d.node = "mac-" + q.mac.Hex();
    d.token = "discovertoken";
    return d;
  }

 private:
  std::mutex mu_;
};

}  // namespace kiln::test
