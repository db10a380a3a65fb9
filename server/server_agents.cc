// Server's agent wiring: the inventory answers plan lookups, and agents'
// events and sessions go to the coordination store.

#include "server/agent_sessions.h"
#include "server/inventory/inventory.h"
#include "server/node_events.h"
#include "server/server.h"

namespace kiln {

Status Server::StartAgents() {
  inventory::Inventory* inv = inventory_.get();
  plans_->SetNodeLookup([inv](const std::string& id) -> Result<classes::NodeRecord> {
    KILN_ASSIGN_OR_RETURN(inventory::Node n, inv->Get(id));
    classes::NodeRecord r;
    r.id = n.id;
    r.hostname = n.hostname.empty() ? n.id : n.hostname;
    for (const auto& m : n.macs) r.macs.push_back(m.ToString());
    r.facts = n.facts.is_object() ? n.facts : Json::object();
    r.classes = n.classes;
    return r;
  });
  node_events_ = std::make_unique<NodeEvents>(coord());
  auto agents = AgentSessions::Start(coord(), *inventory_);
  if (!agents.ok()) return agents.status();
  agents_ = std::move(*agents);
  return Status::Ok();
}

}  // namespace kiln
