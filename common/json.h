#pragma once
// JSON is nlohmann::json everywhere; these helpers turn its exceptions into
// Status values with a clear message, and give a typed field accessor that
// names the missing or mistyped field.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln {

using Json = nlohmann::json;

// Parses text; an error names `what` (a file, "request body") and the byte
// offset of the problem.
Result<Json> ParseJson(std::string_view text, std::string_view what = "JSON");

// Reads j[key] as T. Missing or mistyped: kInvalidArgument naming the key.
template <typename T>
Result<T> JsonField(const Json& j, std::string_view key) {
  if (!j.is_object()) return InvalidArgument("expected a JSON object");
  auto it = j.find(key);
  if (it == j.end()) return InvalidArgument("missing field \"" + std::string(key) + "\"");
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    return InvalidArgument("field \"" + std::string(key) + "\" has the wrong type (" +
                           std::string(it->type_name()) + ")");
  }
}

// Like JsonField but returns fallback when the key is absent (not when mistyped).
template <typename T>
Result<T> JsonFieldOr(const Json& j, std::string_view key, T fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  return JsonField<T>(j, key);
}

// {"error": {"code": "not_found", "message": "..."}}: the API's error body.
Json ErrorJson(const Status& s);
// Inverse of ErrorJson; a body that is not one gives kInternal with the text.
Status StatusFromErrorJson(std::string_view body, long http_status);

}  // namespace kiln
