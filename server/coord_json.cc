#include "server/coord_json.h"

#include <fmt/format.h>

#include <limits>
#include <set>

#include "common/json_scanner.h"
#include "common/strings.h"

namespace kiln::coordjson {

Json StatJson(const coord::Stat& s) {
  return {{"czxid", s.czxid},
          {"mzxid", s.mzxid},
          {"pzxid", s.pzxid},
          {"ctime_ms", s.ctime_ms},
          {"mtime_ms", s.mtime_ms},
          {"version", s.version},
          {"cversion", s.cversion},
          {"ephemeral_owner", s.ephemeral_owner},
          {"data_length", s.data_length},
          {"num_children", s.num_children}};
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += n;
  }
  return true;
}

void PutData(Json& j, std::string_view data, bool force_base64) {
  if (!force_base64 && IsUtf8(data))
    j["data"] = std::string(data);
  else
    j["data_base64"] = Base64Encode(data);
}

Result<std::string> GetData(const Json& j) {
  bool has_text = j.contains("data"), has_b64 = j.contains("data_base64");
  if (has_text && has_b64) return InvalidArgument("give \"data\" or \"data_base64\", not both");
  if (has_text) return JsonField<std::string>(j, "data");
  if (has_b64) {
    KILN_ASSIGN_OR_RETURN(std::string b64, JsonField<std::string>(j, "data_base64"));
    auto raw = Base64Decode(b64);
    if (!raw.ok()) return InvalidArgument("field \"data_base64\": " + raw.status().message());
    return raw;
  }
  return std::string();
}

Json ChangeJson(const coord::Change& c) {
  Json j = {
      {"zxid", c.zxid}, {"type", std::string(coord::EventTypeName(c.type))}, {"path", c.path}};
  if (c.type != coord::EventType::kDeleted) {
    PutData(j, c.data ? std::string_view(*c.data) : std::string_view());
    j["version"] = c.version;
  }
  if (c.type == coord::EventType::kCreated && c.ephemeral_owner != 0)
    j["ephemeral_owner"] = c.ephemeral_owner;
  if (c.time_ms != 0) j["time_ms"] = c.time_ms;
  return j;
}

Result<int32_t> ParseVersion(const Json& v) {
  if (!v.is_number_integer())
    return InvalidArgument(fmt::format("version must be an integer >= -1, got {}", v.dump()));
  int64_t n = v.get<int64_t>();
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max()))
    return InvalidArgument(fmt::format("version {} is out of range", v.dump()));
  if (n < -1 || n > std::numeric_limits<int32_t>::max())
    return InvalidArgument(fmt::format("version must be an integer >= -1, got {}", n));
  return static_cast<int32_t>(n);
}

Result<int32_t> ParseVersionText(std::string_view text) {
  auto n = ParseInt(text);
  if (!n || *n < -1 || *n > std::numeric_limits<int32_t>::max())
    return InvalidArgument(fmt::format("version must be an integer >= -1, got \"{}\"", text));
  return static_cast<int32_t>(*n);
}

namespace {

Status CheckFields(const Json& j, const std::set<std::string>& allowed, std::string_view kind) {
  for (const auto& [k, v] : j.items())
    if (!allowed.count(k))
      return InvalidArgument(fmt::format("unknown field \"{}\" in a {} operation", k, kind));
  return Status::Ok();
}

Result<bool> BoolField(const Json& j, const char* key) {
  if (!j.contains(key)) return false;
  return JsonField<bool>(j, key);
}

Result<int32_t> VersionField(const Json& j) {
  if (!j.contains("version")) return coord::kAnyVersion;
  return ParseVersion(j["version"]);
}

}  // namespace

Result<coord::Op> ParseOp(const Json& j) {
  if (!j.is_object()) return InvalidArgument("an operation must be a JSON object");
  KILN_ASSIGN_OR_RETURN(std::string kind, JsonField<std::string>(j, "op"));
  KILN_ASSIGN_OR_RETURN(std::string path, JsonField<std::string>(j, "path"));
  if (kind == "create") {
    KILN_RETURN_IF_ERROR(CheckFields(
        j, {"op", "path", "data", "data_base64", "ephemeral", "sequential", "session"}, kind));
    coord::CreateOp op;
    op.path = std::move(path);
    KILN_ASSIGN_OR_RETURN(op.data, GetData(j));
    KILN_ASSIGN_OR_RETURN(op.ephemeral, BoolField(j, "ephemeral"));
    KILN_ASSIGN_OR_RETURN(op.sequential, BoolField(j, "sequential"));
    if (j.contains("session")) {
      if (!j["session"].is_number_integer())
        return InvalidArgument("field \"session\" must be a session id (an integer)");
      op.session = j["session"].get<int64_t>();
    }
    return coord::Op(std::move(op));
  }
  if (kind == "set") {
    KILN_RETURN_IF_ERROR(CheckFields(j, {"op", "path", "data", "data_base64", "version"}, kind));
    coord::SetOp op;
    op.path = std::move(path);
    KILN_ASSIGN_OR_RETURN(op.data, GetData(j));
    KILN_ASSIGN_OR_RETURN(op.version, VersionField(j));
    return coord::Op(std::move(op));
  }
  if (kind == "delete" || kind == "check") {
    KILN_RETURN_IF_ERROR(CheckFields(j, {"op", "path", "version"}, kind));
    KILN_ASSIGN_OR_RETURN(int32_t version, VersionField(j));
    if (kind == "delete") return coord::Op(coord::DeleteOp{std::move(path), version});
    return coord::Op(coord::CheckOp{std::move(path), version});
  }
  return InvalidArgument(
      fmt::format("unknown op \"{}\" (expected create, set, delete or check)", kind));
}

Result<std::vector<coord::Op>> ParseOps(const Json& body, size_t max_ops) {
  if (!body.is_object() || !body.contains("ops") || !body["ops"].is_array())
    return InvalidArgument("request body: expected {\"ops\": [...]}");
  const Json& ops = body["ops"];
  if (ops.size() > max_ops)
    return TooLarge(fmt::format("{} operations in one request; at most {}", ops.size(), max_ops));
  std::vector<coord::Op> out;
  out.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    auto op = ParseOp(ops[i]);
    if (!op.ok())
      return Status(op.status().code(), fmt::format("op {}: {}", i, op.status().message()));
    out.push_back(std::move(*op));
  }
  return out;
}

// ---- Fast paths --------------------------------------------------------------

namespace {

// The fields an operation object may carry, as scanned. A field given twice
// is left to nlohmann (which keeps the last), as is any other field.
struct Fields {
  bool has_op = false, has_path = false, has_data = false, has_b64 = false, has_version = false,
       has_ephemeral = false, has_sequential = false, has_session = false;
  std::string op, path, data, b64;
  int64_t version = coord::kAnyVersion, session = 0;
  bool ephemeral = false, sequential = false;
};

bool ScanFields(JsonScanner& sc, std::string& key, Fields* f) {
  if (!sc.Consume('{')) return false;
  if (sc.Consume('}')) return true;
  for (;;) {
    if (!sc.String(&key) || !sc.Consume(':')) return false;
    auto once = [](bool& seen) { return !std::exchange(seen, true); };
    bool ok = false;
    if (key == "op")
      ok = once(f->has_op) && sc.String(&f->op);
    else if (key == "path")
      ok = once(f->has_path) && sc.String(&f->path);
    else if (key == "data")
      ok = once(f->has_data) && sc.String(&f->data);
    else if (key == "data_base64")
      ok = once(f->has_b64) && sc.String(&f->b64);
    else if (key == "version")
      ok = once(f->has_version) && sc.Int(&f->version);
    else if (key == "ephemeral")
      ok = once(f->has_ephemeral) && sc.Bool(&f->ephemeral);
    else if (key == "sequential")
      ok = once(f->has_sequential) && sc.Bool(&f->sequential);
    else if (key == "session")
      ok = once(f->has_session) && sc.Int(&f->session);
    if (!ok) return false;
    if (sc.Consume(',')) continue;
    return sc.Consume('}');
  }
}

// The data of an operation, as GetData reads it; false where GetData fails.
bool TakeData(Fields& f, std::string* out) {
  if (f.has_data && f.has_b64) return false;
  if (f.has_b64) {
    auto raw = Base64Decode(f.b64);
    if (!raw.ok()) return false;
    *out = std::move(*raw);
  } else {
    *out = std::move(f.data);
  }
  return true;
}

bool TakeVersion(const Fields& f, int32_t* out) {
  if (f.version < -1 || f.version > std::numeric_limits<int32_t>::max()) return false;
  *out = static_cast<int32_t>(f.version);
  return true;
}

std::optional<coord::SetOp> SetOf(Fields& f) {
  if (f.has_ephemeral || f.has_sequential || f.has_session) return std::nullopt;
  coord::SetOp op;
  op.path = std::move(f.path);
  if (!TakeData(f, &op.data) || !TakeVersion(f, &op.version)) return std::nullopt;
  return op;
}

std::optional<coord::CreateOp> CreateOf(Fields& f) {
  if (f.has_version) return std::nullopt;
  coord::CreateOp op;
  op.path = std::move(f.path);
  if (!TakeData(f, &op.data)) return std::nullopt;
  op.ephemeral = f.ephemeral;
  op.sequential = f.sequential;
  op.session = f.session;
  return op;
}

std::optional<coord::Op> OpOf(Fields& f) {
  if (!f.has_op || !f.has_path) return std::nullopt;
  if (f.op == "set") {
    auto op = SetOf(f);
    if (!op) return std::nullopt;
    return coord::Op(std::move(*op));
  }
  if (f.op == "create") {
    auto op = CreateOf(f);
    if (!op) return std::nullopt;
    return coord::Op(std::move(*op));
  }
  if (f.op == "delete" || f.op == "check") {
    int32_t version = coord::kAnyVersion;
    if (f.has_data || f.has_b64 || f.has_ephemeral || f.has_sequential || f.has_session ||
        !TakeVersion(f, &version))
      return std::nullopt;
    if (f.op == "delete") return coord::Op(coord::DeleteOp{std::move(f.path), version});
    return coord::Op(coord::CheckOp{std::move(f.path), version});
  }
  return std::nullopt;
}

}  // namespace

std::optional<coord::SetOp> ScanSetBody(std::string_view body) {
  JsonScanner sc(body);
  std::string key;
  Fields f;
  // The handler overrides "op" and "path" in the body; leave that to it.
  if (!ScanFields(sc, key, &f) || !sc.AtEnd() || f.has_op || f.has_path) return std::nullopt;
  return SetOf(f);
}

std::optional<coord::CreateOp> ScanCreateBody(std::string_view body) {
  JsonScanner sc(body);
  std::string key;
  Fields f;
  if (!ScanFields(sc, key, &f) || !sc.AtEnd() || f.has_op || f.has_path) return std::nullopt;
  return CreateOf(f);
}

std::optional<std::vector<coord::Op>> ScanOps(std::string_view body, size_t max_ops) {
  JsonScanner sc(body);
  std::string key;
  if (!sc.Consume('{') || !sc.String(&key) || key != "ops" || !sc.Consume(':') || !sc.Consume('['))
    return std::nullopt;
  std::vector<coord::Op> ops;
  if (!sc.Consume(']')) {
    for (;;) {
      Fields f;
      if (ops.size() == max_ops || !ScanFields(sc, key, &f)) return std::nullopt;
      auto op = OpOf(f);
      if (!op) return std::nullopt;
      ops.push_back(std::move(*op));
      if (sc.Consume(',')) continue;
      if (sc.Consume(']')) break;
      return std::nullopt;
    }
  }
  if (!sc.Consume('}') || !sc.AtEnd()) return std::nullopt;
  return ops;
}

void WriteStat(JsonWriter& w, const coord::Stat& s) {
  // StatJson's keys in nlohmann's (sorted) order.
  w.BeginObject()
      .Key("ctime_ms")
      .Int(s.ctime_ms)
      .Key("cversion")
      .Int(s.cversion)
      .Key("czxid")
      .Int(s.czxid)
      .Key("data_length")
      .Int(s.data_length)
      .Key("ephemeral_owner")
      .Int(s.ephemeral_owner)
      .Key("mtime_ms")
      .Int(s.mtime_ms)
      .Key("mzxid")
      .Int(s.mzxid)
      .Key("num_children")
      .Int(s.num_children)
      .Key("pzxid")
      .Int(s.pzxid)
      .Key("version")
      .Int(s.version)
      .EndObject();
}

std::string UpdateAnswer(std::string_view path, const coord::Stat& stat, coord::Zxid zxid) {
  std::string out;
  out.reserve(path.size() + 240);
  JsonWriter w(&out);
  w.BeginObject().Key("path").String(path).Key("stat");
  WriteStat(w, stat);
  w.Key("zxid").Int(zxid).EndObject();
  out.push_back('\n');
  return out;
}

}  // namespace kiln::coordjson
