#pragma once
// What a machine is, as the agent reports it at registration: the facts
// that class rules read (`facts.cpu.count`, `facts.pci`, ...). Read from
// /sys and /proc; the roots are parameters so tests point them at a fake
// tree, and `kiln-agent --facts FILE` replaces collection entirely.
//
// The schema is classes' (classes/node.h ValidateFacts, docs/CLASSES.md
// "Facts"); how each field is read is in docs/AGENT.md. A fact the agent
// cannot read is left out rather than guessed.

#include <string>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct FactsSources {
  std::string sys = "/sys";
  std::string proc = "/proc";
  std::string hostname;  // empty: gethostname()
};

// Never fails for a missing or odd file: a fact it cannot read is left out
// (or null), because a machine with an unusual /sys must still install.
Json CollectFacts(const FactsSources& src = {});

// Reads facts from a JSON file (--facts), checking the shape the server
// relies on: an object whose known keys have the right types.
Result<Json> LoadFactsFile(const std::string& path);

// The facts' MACs, lower case, in NIC order.
std::vector<std::string> FactMacs(const Json& facts);

}  // namespace kiln::agent
