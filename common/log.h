#pragma once
// Structured log lines on stderr, one event per line, in logfmt:
//
//   2026-11-26T01:56:22.123Z INFO serve listening addr=127.0.0.1:8080
//
// Keys and values are machine-readable (values with spaces or quotes are
// quoted), so `grep`, `awk` and log shippers all work. Thread-safe: each
// line is written with one write(2).

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace kiln::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Field {
  template <typename T>
  Field(std::string_view k, const T& v) : key(k), value(fmt::format("{}", v)) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  std::string_view key;
  std::string value;
};

// Lines below this level are dropped. Default: kInfo.
void SetLevel(Level level);
Level GetLevel();
// Parses "debug", "info", "warn", "error".
bool ParseLevel(std::string_view text, Level* out);

// Where lines go (default stderr). Tests point it at a pipe or a file.
void SetFd(int fd);

// Formats one line without writing it (exposed for tests).
std::string FormatLine(Level level, std::string_view component, std::string_view msg,
                       std::initializer_list<Field> fields);

void Write(Level level, std::string_view component, std::string_view msg,
           std::initializer_list<Field> fields = {});

inline void Debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (GetLevel() <= Level::kDebug) Write(Level::kDebug, c, m, f);
}
inline void Info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, c, m, f);
}
inline void Warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, c, m, f);
}
inline void Error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, c, m, f);
}

}  // namespace kiln::log
