#include "classes/diagnostic.h"

#include <fmt/format.h>

namespace kiln::classes {

std::string SourceLoc::ToString() const {
  if (file.empty()) return {};
  if (line <= 0) return file;
  return fmt::format("{}:{}", file, line);
}

std::string Diagnostic::OneLine() const {
  std::string where = loc.ToString();
  return where.empty() ? message : where + ": " + message;
}

std::string Diagnostic::Render() const {
  std::string out = OneLine();
  if (!line_text.empty()) {
    out += "\n" + line_text;
    if (loc.column > 0) {
      // Tabs stay tabs so the caret lines up in a terminal.
      std::string pad;
      for (int i = 0; i < loc.column - 1 && i < static_cast<int>(line_text.size()); ++i)
        pad += line_text[i] == '\t' ? '\t' : ' ';
      out += "\n" + pad + "^ near here";
    }
  }
  return out;
}

std::string_view LineOf(std::string_view text, int line) {
  if (line <= 0) return {};
  size_t start = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  std::string_view l = text.substr(start, end == std::string_view::npos ? text.npos : end - start);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return l;
}

Diagnostic MakeDiagnostic(std::string file, std::string_view text, int line, int column,
                          std::string message) {
  Diagnostic d;
  d.loc = SourceLoc{std::move(file), line, column};
  d.message = std::move(message);
  d.line_text = std::string(LineOf(text, line));
  return d;
}

Diagnostic PlainDiagnostic(std::string file, std::string message) {
  Diagnostic d;
  d.loc.file = std::move(file);
  d.message = std::move(message);
  return d;
}

void Diagnostics::Add(SourceLoc loc, std::string message) {
  Diagnostic d;
  d.loc = std::move(loc);
  d.message = std::move(message);
  Add(std::move(d));
}

void Diagnostics::Add(Diagnostic d) {
  // The same problem found twice (say, by two sample nodes) is reported once.
  for (const auto& e : items_)
    if (e.loc == d.loc && e.message == d.message) return;
  items_.push_back(std::move(d));
}

void Diagnostics::Append(const Diagnostics& other) {
  for (const auto& d : other.items_) Add(d);
}

std::string Diagnostics::Render() const {
  std::string out;
  for (const auto& d : items_) {
    if (!out.empty()) out += "\n";
    out += d.Render();
  }
  return out;
}

Status Diagnostics::ToStatus() const {
  if (items_.empty()) return Status::Ok();
  std::string msg = items_.front().OneLine();
  if (items_.size() > 1) msg += fmt::format(" (and {} more problems)", items_.size() - 1);
  return InvalidArgument(std::move(msg));
}

Status DiagnosticStatus(const Diagnostic& d) {
  return InvalidArgument(d.OneLine());
}

}  // namespace kiln::classes
