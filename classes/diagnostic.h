#pragma once
// Diagnostics for the config space: every problem names the file (relative
// to the space), the line and, where it is known, the column, and renders
// Ninja-style with the offending line and a caret:
//
//   disk/WEB:4: unknown unit "GX" in size "10GX" (use K, M, G, T or KiB..TiB)
//   part root size=10GX fs=ext4 mount=/
//                  ^ near here
//
// A Diagnostics list collects every problem of a load or a check, so that
// `kiln config check` reports them all at once instead of the first.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::classes {

// A place in the config space. line and column are 1-based; 0 = unknown.
struct SourceLoc {
  std::string file;  // relative to the space root: "vars/WEB.lua"
  int line = 0;
  int column = 0;

  bool known() const { return !file.empty(); }
  // "vars/WEB.lua:3", "files/etc/motd/WEB", or "" when unknown.
  std::string ToString() const;
  bool operator==(const SourceLoc&) const = default;
};

struct Diagnostic {
  SourceLoc loc;
  std::string message;
  std::string line_text;  // the source line, when known (for the caret)

  // One line: "vars/WEB.lua:3: message".
  std::string OneLine() const;
  // OneLine, then the source line and a caret under the column (Ninja style).
  std::string Render() const;
  bool operator==(const Diagnostic&) const = default;
};

// Builds a diagnostic for line `line` (1-based) of `text`, copying that line
// for the caret. column 0 = no caret.
Diagnostic MakeDiagnostic(std::string file, std::string_view text, int line, int column,
                          std::string message);

// A diagnostic without a line: "file: message" (file may be empty).
Diagnostic PlainDiagnostic(std::string file, std::string message);

// The 1-based line of a text (without its newline), or "" past the end.
std::string_view LineOf(std::string_view text, int line);

class Diagnostics {
 public:
  void Add(Diagnostic d);
  void Add(SourceLoc loc, std::string message);
  void Append(const Diagnostics& other);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }

  // Every diagnostic rendered, separated by newlines.
  std::string Render() const;
  // kInvalidArgument whose message is the first diagnostic's one-line form,
  // plus "(and N more problems)" when there are several; OK when empty.
  Status ToStatus() const;

 private:
  std::vector<Diagnostic> items_;
};

// A Status carrying a diagnostic's one-line form (kInvalidArgument).
Status DiagnosticStatus(const Diagnostic& d);

}  // namespace kiln::classes
