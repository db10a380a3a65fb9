#pragma once
// The coordination store's values as the HTTP API writes and reads them
// (docs/API.md, "Coordination"). One place, so the API, the watch stream
// and the CLI agree on field names.
//
// Znode data is bytes. In JSON it travels as "data" (a string) when it is
// valid UTF-8, else as "data_base64"; requests may use either.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/json.h"
#include "common/json_writer.h"
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

// ---- Fast paths for the hot write requests ----------------------------------
// The coordination API answers tens of thousands of writes per second; a
// nlohmann tree per request and per answer costs more than the store's own
// work. These read request bodies with JsonScanner and write answers with
// JsonWriter instead.
//
// The Scan* functions read the common request shapes. They return nullopt
// for anything else, including every invalid body: the caller then parses
// with nlohmann and ParseOp/ParseOps, which give the same values for what a
// Scan* function accepts and the API's error messages for the rest. So
// they change no answer, only its cost.

// A PUT /api/v1/coord/data/{path} body ({"data"|"data_base64","version"});
// the op's path is left empty for the caller.
std::optional<coord::SetOp> ScanSetBody(std::string_view body);
// A non-empty POST /api/v1/coord/data/{path} body ({"data"|"data_base64",
// "ephemeral","sequential","session"}); the path is left empty.
std::optional<coord::CreateOp> ScanCreateBody(std::string_view body);
// A multi or batch body {"ops":[...]} of at most max_ops operations.
std::optional<std::vector<coord::Op>> ScanOps(std::string_view body, size_t max_ops);

// Writes StatJson(s) without building it.
void WriteStat(JsonWriter& w, const coord::Stat& s);
// {"path":P,"stat":{...},"zxid":Z} followed by a newline: the answer of a
// create or set, as HttpResponse::JsonBody would render it.
std::string UpdateAnswer(std::string_view path, const coord::Stat& stat, coord::Zxid zxid);

// data_base64 uses common/base64.h.
using ::kiln::Base64Decode;
using ::kiln::Base64Encode;
bool IsUtf8(std::string_view s);

}  // namespace kiln::coordjson
