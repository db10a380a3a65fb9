#include "server/inventory/node.h"

#include <chrono>

#include <fmt/format.h>

namespace kiln::inventory {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

const char* const kKnown[] = {"id",           "hostname",   "macs",       "classes",
                              "image",        "boot",       "state",      "facts",
                              "enroll_token", "agent_token", "installed_image", "created_ms",
                              "updated_ms"};

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ValidateNodeName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && name.front() != '-' && name.back() != '-';
  for (char c : name) ok = ok && (IsLowerAlnum(c) || c == '-');
  if (ok) return Status::Ok();
  return InvalidArgument(fmt::format(
      "node name \"{}\" is not valid: use 1-63 lower-case letters, digits and '-', not starting "
      "or ending with '-'",
      name));
}

Status ValidateClassName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) ok = ok && (IsAlnum(c) || c == '_' || c == '-');
  if (ok) return Status::Ok();
  return InvalidArgument(fmt::format(
      "class name \"{}\" is not valid: use 1-64 letters, digits, '_' and '-'", name));
}

Status ValidateImageRef(std::string_view ref) {
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 128) return false;
    for (char c : p)
      if (!(IsAlnum(c) || c == '.' || c == '_' || c == '-')) return false;
    return true;
  };
  size_t at = ref.find('@');
  bool ok = at == std::string_view::npos ? part_ok(ref)
                                         : part_ok(ref.substr(0, at)) && part_ok(ref.substr(at + 1));
  if (ok) return Status::Ok();
  return InvalidArgument(fmt::format(
      "image \"{}\" is not valid: expected NAME or NAME@VERSION (letters, digits, '.', '_', '-')",
      ref));
}

std::string DiscoveredId(const pxe::Mac& mac) { return "mac-" + mac.Hex(); }

Json Node::ToJson(bool with_secrets) const {
  Json j = extra;
  j["id"] = id;
  j["hostname"] = hostname;
  Json macs_json = Json::array();
  for (const auto& m : macs) macs_json.push_back(m.ToString());
  j["macs"] = macs_json;
  j["classes"] = classes;
  j["image"] = image;
  j["boot"] = std::string(pxe::BootTargetName(boot));
  j["state"] = state;
  j["facts"] = facts;
  j["created_ms"] = created_ms;
  j["updated_ms"] = updated_ms;
  if (!installed_image.empty()) j["installed_image"] = installed_image;
  if (with_secrets) {
    if (!enroll_token.empty()) j["enroll_token"] = enroll_token;
    if (!agent_token.empty()) j["agent_token"] = agent_token;
  }
  return j;
}

Result<Node> Node::FromJson(const Json& j, std::string_view id) {
  if (!j.is_object()) return Corruption(fmt::format("node {}: record is not a JSON object", id));
  Node n;
  n.id = std::string(id);
  auto fail = [&](const Status& s) { return Corruption(fmt::format("node {}: {}", id, s.message())); };
  auto rid = JsonFieldOr<std::string>(j, "id", n.id);
  if (!rid.ok()) return fail(rid.status());
  if (*rid != n.id) return Corruption(fmt::format("node {}: record names id \"{}\"", id, *rid));
  auto hostname = JsonFieldOr<std::string>(j, "hostname", n.id);
  auto macs = JsonFieldOr<std::vector<std::string>>(j, "macs", {});
  auto classes = JsonFieldOr<std::vector<std::string>>(j, "classes", {});
  auto image = JsonFieldOr<std::string>(j, "image", "");
  auto boot = JsonFieldOr<std::string>(j, "boot", "discover");
  auto state = JsonFieldOr<std::string>(j, "state", "new");
  auto enroll = JsonFieldOr<std::string>(j, "enroll_token", "");
  auto agent = JsonFieldOr<std::string>(j, "agent_token", "");
  auto installed = JsonFieldOr<std::string>(j, "installed_image", "");
  auto created = JsonFieldOr<int64_t>(j, "created_ms", 0);
  auto updated = JsonFieldOr<int64_t>(j, "updated_ms", 0);
  for (const Status& s : {hostname.status(), macs.status(), classes.status(), image.status(),
                          boot.status(), state.status(), enroll.status(), agent.status(),
                          installed.status(), created.status(), updated.status()})
    if (!s.ok()) return fail(s);
  n.hostname = *hostname;
  for (const auto& m : *macs) {
    auto mac = pxe::ParseMac(m);
    if (!mac.ok()) return fail(mac.status());
    n.macs.push_back(*mac);
  }
  n.classes = *classes;
  n.image = *image;
  auto target = pxe::ParseBootTarget(*boot);
  if (!target.ok()) return fail(target.status());
  n.boot = *target;
  n.state = *state;
  if (j.contains("facts")) n.facts = j["facts"];
  n.enroll_token = *enroll;
  n.agent_token = *agent;
  n.installed_image = *installed;
  n.created_ms = *created;
  n.updated_ms = *updated;
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* name : kKnown) known = known || k == name;
    if (!known) n.extra[k] = v;
  }
  return n;
}

}  // namespace kiln::inventory
