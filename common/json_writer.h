#pragma once
// JsonWriter: appends compact JSON to a std::string without building a
// nlohmann tree, for answers with a fixed shape on hot paths (the
// coordination API answers tens of thousands of writes per second, and a
// nlohmann tree costs an allocation per key and value).
//
// The output is byte for byte what Json::dump(-1, ' ', false,
// error_handler_t::replace) gives for the same values, provided the caller
// writes an object's keys in sorted order (nlohmann's objects are sorted
// maps): strings are UTF-8 with only '"', '\\' and control characters
// escaped ("\n", "\t", ... or "\u00xx"), and a string that is not valid
// UTF-8 has its bad bytes replaced by U+FFFD as nlohmann does.
//
// The writer does not check the structure (a key outside an object, a
// missing value): callers write fixed shapes. Not thread-safe; cheap to
// create.

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

class JsonWriter {
 public:
  // Appends to *out, which the caller owns and may reuse.
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // An object key; the next call writes its value.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Bool(bool v);
  // Text that already is one JSON value (e.g. a dumped nlohmann value).
  JsonWriter& Raw(std::string_view json);

 private:
  void Separate();

  std::string* out_;
  // Whether the next value or key in the current container needs a comma.
  bool need_comma_ = false;
};

// Appends s as a JSON string literal (quotes included), as JsonWriter does.
void AppendJsonString(std::string* out, std::string_view s);

// The length of the valid UTF-8 sequence starting at s[i] (1 for ASCII), or
// 0 when there is none: truncated, overlong, a surrogate or past U+10FFFF.
// REQUIRES i < s.size().
size_t Utf8SequenceAt(std::string_view s, size_t i);

}  // namespace kiln
