#pragma once
// A node record as the inventory keeps it in the coordination store, at
// /kiln/nodes/<id>, as JSON:
//
//   {"id": "web01", "hostname": "web01", "macs": ["52:54:00:12:34:56"],
//    "classes": ["WEB"], "image": "web@3", "boot": "install",
//    "state": "new", "facts": {...}, "created_ms": ..., "updated_ms": ...,
//    "installed_image": "web@3", "enroll_token": "...", "agent_token": "..."}
//
// states kiln sets: "new" (added by an operator), "discovered" (an unknown
// MAC booted), "enrolled" (its agent has a node token), "installed" (the
// agent reported success; the node then boots localboot). The agent may
// record others ("installing", "failed").
//
// Secrets (enroll_token, agent_token) are stored but never leave the
// server: ToJson(false) drops them, and that is what the API returns.
// Unknown fields are kept as they are (other modules may add fields).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "pxe/boot_resolver.h"
#include "pxe/mac.h"

namespace kiln::inventory {

struct Node {
  std::string id;
  std::string hostname;
  std::vector<pxe::Mac> macs;
  std::vector<std::string> classes;
  std::string image;  // "web", "web@3" or ""
  pxe::BootTarget boot = pxe::BootTarget::kDiscover;
  std::string state = "new";
  Json facts = Json::object();
  std::string enroll_token;  // one-time; the next boot's config carries it
  std::string agent_token;   // the node token its agent holds
  std::string installed_image;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  Json extra = Json::object();  // fields this code does not know

  int32_t version = -1;  // the znode's version; not stored in the JSON

  bool discovered() const { return state == "discovered"; }
  Json ToJson(bool with_secrets) const;
  // id comes from the znode name; a record naming another id is Corruption.
  static Result<Node> FromJson(const Json& j, std::string_view id);
};

// Names: 1-63 lower-case letters, digits and '-', not starting or ending
// with '-' (a DNS label, so a node name can be its hostname).
Status ValidateNodeName(std::string_view name);
// Classes: 1-64 letters, digits, '_' and '-'.
Status ValidateClassName(std::string_view name);
// Images: NAME or NAME@VERSION, each 1-128 of letters, digits, '.', '_', '-'.
Status ValidateImageRef(std::string_view ref);

// The id a discovered node gets: "mac-525400123456".
std::string DiscoveredId(const pxe::Mac& mac);

int64_t NowMs();

}  // namespace kiln::inventory
