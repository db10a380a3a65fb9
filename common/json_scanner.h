#pragma once
// JsonScanner: reads a small JSON document token by token straight into the
// caller's values, without a nlohmann tree, for request bodies on hot paths.
//
// It accepts a strict subset of JSON: objects, arrays, strings (all escapes,
// valid UTF-8 only), integers that fit int64, true and false. Whatever it
// accepts it reads exactly as nlohmann::json::parse would. Anything else
// (floats, null, invalid or truncated text, a BOM, a number too large)
// makes a call return false and leaves the scanner at an unspecified
// position: the caller then parses the text with nlohmann, whose error
// messages are the API's. So the scanner never produces an error of its
// own and can never accept what the general parser rejects.
//
// The text must outlive the scanner. Not thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : s_(text) {}

  // Skips whitespace; true (and consumes it) if the next character is c.
  bool Consume(char c);
  // Skips whitespace; true if the next character is c (not consumed).
  bool Peek(char c);
  // A string literal, unescaped into *out (replacing its contents).
  bool String(std::string* out);
  // An integer in int64 range (no fraction, no exponent).
  bool Int(int64_t* out);
  bool Bool(bool* out);
  // Skips whitespace; true if nothing else is left.
  bool AtEnd();

 private:
  void SkipSpace();
  bool Hex4(uint32_t* out);

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace kiln
