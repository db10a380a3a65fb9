#include "classes/node.h"

#include <fmt/format.h>

#include "classes/names.h"

namespace kiln::classes {
namespace {

std::string TypeName(const Json& j) {
  if (j.is_number_unsigned()) return "unsigned integer";
  if (j.is_number_integer()) return "integer";
  return j.type_name();
}

// One schema rule: a field path, the expected kind, and a predicate.
enum class Kind { kString, kUint, kBool, kObject, kArray, kStringArray };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kString: return "a string";
    case Kind::kUint: return "an unsigned integer";
    case Kind::kBool: return "a boolean";
    case Kind::kObject: return "an object";
    case Kind::kArray: return "an array";
    case Kind::kStringArray: return "an array of strings";
  }
  return "?";
}

bool Matches(const Json& j, Kind k) {
  switch (k) {
    case Kind::kString: return j.is_string();
    case Kind::kUint:
      return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
    case Kind::kBool: return j.is_boolean();
    case Kind::kObject: return j.is_object();
    case Kind::kArray: return j.is_array();
    case Kind::kStringArray:
      if (!j.is_array()) return false;
      for (const auto& e : j)
        if (!e.is_string()) return false;
      return true;
  }
  return false;
}

struct FieldRule {
  const char* name;
  Kind kind;
  bool required = false;
};

Status CheckFields(const Json& obj, const std::string& path,
                   std::initializer_list<FieldRule> rules) {
  if (!obj.is_object())
    return InvalidArgument(fmt::format("{}: expected an object, got {}", path, TypeName(obj)));
  for (const auto& r : rules) {
    auto it = obj.find(r.name);
    if (it == obj.end() || it->is_null()) {
      if (r.required) return InvalidArgument(fmt::format("{}.{}: missing", path, r.name));
      continue;
    }
    if (!Matches(*it, r.kind))
      return InvalidArgument(
          fmt::format("{}.{}: expected {}, got {}", path, r.name, KindName(r.kind), TypeName(*it)));
  }
  return Status::Ok();
}

Status CheckArray(const Json& facts, const char* key, std::initializer_list<FieldRule> rules) {
  auto it = facts.find(key);
  if (it == facts.end() || it->is_null()) return Status::Ok();
  std::string path = std::string("facts.") + key;
  if (!it->is_array())
    return InvalidArgument(fmt::format("{}: expected an array, got {}", path, TypeName(*it)));
  for (size_t i = 0; i < it->size(); ++i)
    KILN_RETURN_IF_ERROR(CheckFields((*it)[i], fmt::format("{}[{}]", path, i), rules));
  return Status::Ok();
}

Status CheckObject(const Json& facts, const char* key, std::initializer_list<FieldRule> rules) {
  auto it = facts.find(key);
  if (it == facts.end() || it->is_null()) return Status::Ok();
  return CheckFields(*it, std::string("facts.") + key, rules);
}

}  // namespace

std::string NormalizeMac(std::string_view mac) {
  std::string out;
  int digits = 0;
  for (char c : mac) {
    if (c == ':' || c == '-') {
      if (digits != 2) return {};
      out += ':';
      digits = 0;
      continue;
    }
    char l = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return {};
    out += l;
    if (++digits > 2) return {};
  }
  return out.size() == 17 ? out : std::string();
}

Status ValidateFacts(const Json& facts) {
  if (!facts.is_object())
    return InvalidArgument("facts: expected an object, got " + TypeName(facts));
  if (facts.contains("schema") && facts["schema"] != kFactsSchema)
    return InvalidArgument(
        fmt::format("facts.schema: {} is not a schema this kiln reads (expected {})",
                    facts["schema"].dump(), kFactsSchema));
  KILN_RETURN_IF_ERROR(CheckObject(facts, "cpu",
                                   {{"model", Kind::kString},
                                    {"vendor", Kind::kString},
                                    {"arch", Kind::kString},
                                    {"sockets", Kind::kUint},
                                    {"cores", Kind::kUint},
                                    {"threads", Kind::kUint},
                                    {"flags", Kind::kStringArray}}));
  KILN_RETURN_IF_ERROR(CheckObject(facts, "memory", {{"total_bytes", Kind::kUint, true}}));
  KILN_RETURN_IF_ERROR(CheckArray(facts, "disks",
                                  {{"name", Kind::kString, true},
                                   {"size_bytes", Kind::kUint, true},
                                   {"path", Kind::kString},
                                   {"rotational", Kind::kBool},
                                   {"removable", Kind::kBool},
                                   {"transport", Kind::kString},
                                   {"model", Kind::kString},
                                   {"serial", Kind::kString}}));
  KILN_RETURN_IF_ERROR(CheckArray(facts, "nics",
                                  {{"name", Kind::kString, true},
                                   {"mac", Kind::kString, true},
                                   {"driver", Kind::kString},
                                   {"speed_mbps", Kind::kUint},
                                   {"link", Kind::kBool},
                                   {"lldp", Kind::kObject}}));
  if (facts.contains("nics") && facts["nics"].is_array()) {
    for (size_t i = 0; i < facts["nics"].size(); ++i)
      if (NormalizeMac(facts["nics"][i]["mac"].get<std::string>()).empty())
        return InvalidArgument(fmt::format("facts.nics[{}].mac: \"{}\" is not a MAC address", i,
                                           facts["nics"][i]["mac"].get<std::string>()));
  }
  KILN_RETURN_IF_ERROR(CheckArray(facts, "pci",
                                  {{"slot", Kind::kString, true},
                                   {"class", Kind::kString, true},
                                   {"vendor", Kind::kString, true},
                                   {"device", Kind::kString, true},
                                   {"vendor_name", Kind::kString},
                                   {"device_name", Kind::kString},
                                   {"driver", Kind::kString}}));
  KILN_RETURN_IF_ERROR(CheckObject(facts, "dmi",
                                   {{"sys_vendor", Kind::kString},
                                    {"product_name", Kind::kString},
                                    {"product_serial", Kind::kString},
                                    {"board_vendor", Kind::kString},
                                    {"board_name", Kind::kString},
                                    {"bios_vendor", Kind::kString},
                                    {"bios_version", Kind::kString},
                                    {"chassis_type", Kind::kString},
                                    {"chassis_asset_tag", Kind::kString}}));
  KILN_RETURN_IF_ERROR(CheckObject(facts, "firmware",
                                   {{"type", Kind::kString, true}, {"secure_boot", Kind::kBool}}));
  if (facts.contains("firmware") && facts["firmware"].is_object()) {
    std::string t = facts["firmware"]["type"];
    if (t != "uefi" && t != "bios")
      return InvalidArgument("facts.firmware.type: \"" + t + "\" is neither \"uefi\" nor \"bios\"");
  }
  return Status::Ok();
}

std::vector<FactDisk> DisksOf(const Json& facts) {
  std::vector<FactDisk> out;
  if (!facts.is_object() || !facts.contains("disks") || !facts["disks"].is_array()) return out;
  for (const auto& d : facts["disks"]) {
    FactDisk fd;
    fd.name = d.value("name", "");
    fd.path = d.value("path", "/dev/" + fd.name);
    fd.size_bytes = d.value("size_bytes", uint64_t{0});
    fd.rotational = d.value("rotational", false);
    fd.removable = d.value("removable", false);
    fd.transport = d.value("transport", "");
    fd.model = d.value("model", "");
    fd.serial = d.value("serial", "");
    out.push_back(std::move(fd));
  }
  return out;
}

Result<NodeRecord> NodeFromJson(const Json& j) {
  auto ctx = [](const Status& s) { return s.WithContext("node record"); };
  if (!j.is_object()) return InvalidArgument("node record: expected a JSON object");
  NodeRecord n;
  auto id = JsonField<std::string>(j, "id");
  if (!id.ok()) return ctx(id.status());
  n.id = *id;
  auto host = JsonFieldOr<std::string>(j, "hostname", n.id);
  if (!host.ok()) return ctx(host.status());
  n.hostname = *host;
  if (!IsHostName(n.hostname))
    return InvalidArgument("node record: hostname \"" + n.hostname +
                           "\" is not a short lower-case hostname ([a-z0-9-], at most 63)");
  if (j.contains("facts") && !j["facts"].is_null()) n.facts = j["facts"];
  if (auto s = ValidateFacts(n.facts); !s.ok()) return ctx(s);
  auto macs = JsonFieldOr<std::vector<std::string>>(j, "macs", {});
  if (!macs.ok()) return ctx(macs.status());
  for (const auto& m : *macs) {
    std::string norm = NormalizeMac(m);
    if (norm.empty()) return InvalidArgument("node record: \"" + m + "\" is not a MAC address");
    n.macs.push_back(norm);
  }
  if (n.macs.empty() && n.facts.contains("nics"))
    for (const auto& nic : n.facts["nics"])
      n.macs.push_back(NormalizeMac(nic["mac"].get<std::string>()));
  auto classes = JsonFieldOr<std::vector<std::string>>(j, "classes", {});
  if (!classes.ok()) return ctx(classes.status());
  n.classes = *classes;
  return n;
}

Json NodeToJson(const NodeRecord& n) {
  return {{"id", n.id},
          {"hostname", n.hostname},
          {"macs", n.macs},
          {"facts", n.facts},
          {"classes", n.classes}};
}

}  // namespace kiln::classes
