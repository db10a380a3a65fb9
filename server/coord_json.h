#pragma once
// The coordination store's values as the HTTP API writes and reads them
// (docs/API.md, "Coordination"). One place, so the API, the watch stream
// and the CLI agree on field names.
//
// Znode data is bytes. In JSON it travels as "data" (a string) when it is
// valid UTF-8, else as "data_base64"; requests may use either.

#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/json.h"
#include "common/status.h"
#include "server/coord/coord_types.h"

namespace kiln::coordjson {

Json StatJson(const coord::Stat& s);
// Sets j["data"] or j["data_base64"].
void PutData(Json& j, std::string_view data, bool force_base64 = false);
// Reads "data" or "data_base64" (neither: empty). Errors name the field.
Result<std::string> GetData(const Json& j);

// A change as a watch stream event (the SSE event's data line).
Json ChangeJson(const coord::Change& c);

// Parses one operation of a multi or batch:
//   {"op":"create","path":P,"data":D,"ephemeral":B,"sequential":B,"session":N}
//   {"op":"set","path":P,"data":D,"version":V}
//   {"op":"delete","path":P,"version":V}
//   {"op":"check","path":P,"version":V}
// Unknown fields and kinds are errors, so typos do not pass silently.
Result<coord::Op> ParseOp(const Json& j);
// The "ops" array of a request body; errors are prefixed "op N: ".
Result<std::vector<coord::Op>> ParseOps(const Json& body, size_t max_ops);

// A version from JSON or a query string: an integer >= -1 that fits int32.
Result<int32_t> ParseVersion(const Json& v);
Result<int32_t> ParseVersionText(std::string_view text);

// data_base64 uses common/base64.h.
using ::kiln::Base64Decode;
using ::kiln::Base64Encode;
bool IsUtf8(std::string_view s);

}  // namespace kiln::coordjson
