#pragma once
// String helpers that the standard library lacks.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

std::vector<std::string> Split(std::string_view s, char sep);
std::string_view Trim(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string ToLower(std::string_view s);

// Whole-string decimal parse; nullopt on junk, sign or overflow.
std::optional<uint64_t> ParseUint(std::string_view s);
std::optional<int64_t> ParseInt(std::string_view s);

// "1.5 GiB", "512 B": for progress bars and status output.
std::string HumanBytes(uint64_t bytes);
// "1h02m", "3m05s", "12s".
std::string HumanDuration(double seconds);

std::string HexEncode(std::string_view bytes);
// URL-encodes a query component (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view s);
std::string UrlDecode(std::string_view s);

}  // namespace kiln
