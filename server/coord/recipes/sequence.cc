#include "server/coord/recipes/sequence.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>

namespace kiln::coord::recipes {
namespace {

int64_t Counter(const std::string& name) {
  constexpr size_t kDigits = 10;
  if (name.size() < kDigits) return std::numeric_limits<int64_t>::max();
  int64_t n = 0;
  for (size_t i = name.size() - kDigits; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::numeric_limits<int64_t>::max();
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

}  // namespace

std::vector<std::string> SortBySequence(std::vector<std::string> names) {
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return std::make_tuple(Counter(a), std::cref(a)) < std::make_tuple(Counter(b), std::cref(b));
  });
  return names;
}

}  // namespace kiln::coord::recipes
