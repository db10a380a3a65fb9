#pragma once
// Helpers shared by the recipes: ordering sequential znodes by their
// counter (the 10-digit suffix ZooKeeper appends), whatever their prefix.

#include <string>
#include <vector>

namespace kiln::coord::recipes {

// Names of sequential znodes sorted by their counter (ties by name). Names
// without a 10-digit suffix sort last, so a stray znode never leads.
std::vector<std::string> SortBySequence(std::vector<std::string> names);

}  // namespace kiln::coord::recipes
