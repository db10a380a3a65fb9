#include "server/agent_sessions.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/strings.h"
#include "server/inventory/inventory.h"

namespace kiln {

std::string AgentSessions::AgentPath(const std::string& node) {
  return std::string(inventory::kNodesPath) + "/" + node + "/agent";
}

Result<std::unique_ptr<AgentSessions>> AgentSessions::Start(coord::CoordStore& store,
                                                            inventory::Inventory& inventory) {
  std::unique_ptr<AgentSessions> a(new AgentSessions(store, inventory));
  AgentSessions* raw = a.get();
  auto stream = store.OpenStream(
      {.path = inventory::kNodesPath, .recursive = true, .since = -1},
      {.on_change = [raw](const coord::ChangePtr& c) { raw->OnChange(c); }, .on_end = nullptr});
  if (!stream.ok()) return stream.status().WithContext("watching agents");
  a->stream_ = std::move(*stream);
  a->worker_ = std::thread([raw] { raw->WorkLoop(); });
  return a;
}

AgentSessions::~AgentSessions() {
  stream_.reset();  // no more OnChange after this
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void AgentSessions::OnChange(const coord::ChangePtr& c) {
  // Runs on a store thread: only note the node; the worker does the rest.
  if (c->type != coord::EventType::kDeleted || !EndsWith(c->path, "/agent")) return;
  std::string prefix = std::string(inventory::kNodesPath) + "/";
  if (!StartsWith(c->path, prefix)) return;
  std::string node = c->path.substr(prefix.size(), c->path.size() - prefix.size() - 6);
  if (node.empty() || node.find('/') != std::string::npos) return;
  std::lock_guard lock(mu_);
  lost_.push_back(node);
  cv_.notify_all();
}

void AgentSessions::WorkLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !lost_.empty(); });
    if (stop_) return;
    std::string node = lost_.front();
    lost_.pop_front();
    lock.unlock();
    // A new agent of the node may have registered already (it replaced the
    // old one): then nothing is lost.
    auto live = store_.Exists(AgentPath(node));
    if (live.ok() && live->has_value()) {
      lock.lock();
      continue;
    }
    // A node whose agent vanished mid-install is lost; one that finished or
    // failed first keeps its state (only_if).
    auto n = inventory_.SetState(node, "lost",
                                 "the agent stopped reporting during the install (power, crash or "
                                 "network); boot the node again to reinstall",
                                 "installing");
    if (!n.ok() && n.status().code() != Code::kNotFound)
      log::Warn("agents", "cannot mark node lost",
                {{"node", node}, {"error", n.status().ToString()}});
    else if (n.ok() && n->state == "lost")
      log::Warn("agents", "agent lost during install", {{"node", node}});
    lock.lock();
  }
}

Result<coord::SessionInfo> AgentSessions::Open(const std::string& node,
                                               std::chrono::milliseconds timeout,
                                               const Json& info) {
  coord::SessionId old = 0;
  {
    std::lock_guard lock(mu_);
    auto it = session_of_.find(node);
    if (it != session_of_.end()) old = it->second;
  }
  if (old) (void)store_.CloseSession(old);
  KILN_ASSIGN_OR_RETURN(coord::SessionInfo s, store_.CreateSession(timeout));
  std::string path = AgentPath(node);
  // A previous agent's znode may linger until its session expires: replace
  // it, atomically with creating ours.
  std::vector<coord::Op> ops;
  auto exists = store_.Exists(path);
  if (exists.ok() && exists->has_value()) ops.push_back(coord::DeleteOp{path});
  Json data = info.is_object() ? info : Json::object();
  data["session"] = s.id;
  ops.push_back(coord::CreateOp{path, data.dump(), true, false, s.id});
  auto r = store_.Multi(std::move(ops));
  if (!r.ok()) {
    (void)store_.CloseSession(s.id);
    if (r.status().code() == Code::kNotFound) return NotFound("no node " + node);
    return r.status().WithContext("registering the agent of " + node);
  }
  std::lock_guard lock(mu_);
  session_of_[node] = s.id;
  return s;
}

Status AgentSessions::Heartbeat(const std::string& node, coord::SessionId id) {
  {
    std::lock_guard lock(mu_);
    auto it = session_of_.find(node);
    if (it == session_of_.end() || it->second != id)
      return Status(
          Code::kSessionExpired,
          fmt::format("session {} is not the live session of node {}; open a new one", id, node));
  }
  return store_.Heartbeat(id);
}

Status AgentSessions::Close(const std::string& node, coord::SessionId id) {
  {
    std::lock_guard lock(mu_);
    auto it = session_of_.find(node);
    if (it == session_of_.end() || it->second != id)
      return Status(Code::kSessionExpired, fmt::format("session {} is not node {}'s", id, node));
    session_of_.erase(it);
  }
  return store_.CloseSession(id);
}

Status AgentSessions::Update(const std::string& node, coord::SessionId id, const Json& info) {
  {
    std::lock_guard lock(mu_);
    auto it = session_of_.find(node);
    if (it == session_of_.end() || it->second != id)
      return Status(Code::kSessionExpired, fmt::format("session {} is not node {}'s", id, node));
  }
  Json data = info.is_object() ? info : Json::object();
  data["session"] = id;
  return store_.Set(AgentPath(node), data.dump()).status();
}

}  // namespace kiln
