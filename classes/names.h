#pragma once
// The names of the config space: classes, hosts, variables, roles.

#include <string_view>

namespace kiln::classes {

// The longest class, variable or role name. Keeps file names (and Lua chunk
// names, which Lua truncates at 60 bytes) short.
inline constexpr size_t kMaxNameLength = 40;

// A class declared in classes.list: an identifier, [A-Za-z_][A-Za-z0-9_]*,
// at most kMaxNameLength bytes. By convention upper case (WEB, DB, GPU).
bool IsClassName(std::string_view s);
// A hostname class: one DNS label, [a-z0-9-], not starting or ending with
// '-', 1..63 bytes. Lower case, so it never collides with a convention-
// following class name.
bool IsHostName(std::string_view s);
// A variable name: an identifier as for classes.
inline bool IsVarName(std::string_view s) {
  return IsClassName(s);
}

// True if s is valid UTF-8 (file contents travel as text only then).
bool IsUtf8(std::string_view s);

// The two classes every node has, first and last.
inline constexpr std::string_view kDefaultClass = "DEFAULT";
inline constexpr std::string_view kLastClass = "LAST";

}  // namespace kiln::classes
