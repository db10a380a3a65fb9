#include "server/inventory/inventory.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/hash.h"
#include "common/log.h"
#include "server/coord/path.h"

namespace kiln::inventory {
namespace {

std::string NodePath(const std::string& id) {
  return coord::JoinPath(kNodesPath, id);
}
std::string MacPath(const pxe::Mac& m) {
  return coord::JoinPath(kMacsPath, m.Hex());
}
std::string NewEnrollToken() {
  return RandomHex(16);
}

bool NeedsToken(pxe::BootTarget t) {
  return t == pxe::BootTarget::kInstall || t == pxe::BootTarget::kDiscover;
}

Status NoSuchNode(std::string_view name_or_mac) {
  return NotFound(fmt::format("no node is named or has the MAC \"{}\"", name_or_mac));
}

}  // namespace

Result<std::unique_ptr<Inventory>> Inventory::Open(coord::CoordStore& store, TokenHooks hooks) {
  std::unique_ptr<Inventory> inv(new Inventory(store, std::move(hooks)));
  KILN_RETURN_IF_ERROR(store.EnsurePath(kNodesPath));
  KILN_RETURN_IF_ERROR(store.EnsurePath(kMacsPath));
  KILN_RETURN_IF_ERROR(inv->Load());
  return inv;
}

Inventory::~Inventory() {
  stream_.reset();
  std::unique_lock lock(mu_);
  inflight_cv_.wait(lock, [&] { return inflight_ == 0; });
}

Status Inventory::Load() {
  // Everything up to `since` is in the snapshot read below; the stream
  // replays anything after it, in order, so no change is missed (a change
  // seen twice is applied twice, harmlessly).
  coord::Zxid since = store_.LastZxid();
  KILN_ASSIGN_OR_RETURN(auto children, store_.Children(kNodesPath));
  for (const auto& id : children.children) {
    auto got = store_.Get(NodePath(id));
    if (!got.ok()) continue;  // deleted meanwhile
    auto json = ParseJson(got->data, NodePath(id));
    auto node = json.ok() ? Node::FromJson(*json, id) : Result<Node>(json.status());
    if (!node.ok()) {
      log::Warn("inventory", "skipping unreadable node record",
                {{"path", NodePath(id)}, {"error", node.status().message()}});
      continue;
    }
    node->version = got->stat.version;
    std::lock_guard lock(mu_);
    PutLocked(std::move(*node));
  }
  coord::StreamOptions so;
  so.path = kNodesPath;
  so.recursive = true;
  so.since = since;
  coord::StreamHandlers h;
  h.on_change = [this](const coord::ChangePtr& c) { OnChange(c); };
  h.on_end = [](Status s) {
    if (s.code() != Code::kUnavailable)
      log::Error("inventory", "node watch stream ended; restart kiln serve",
                 {{"error", s.ToString()}});
  };
  KILN_ASSIGN_OR_RETURN(stream_, store_.OpenStream(so, std::move(h)));
  log::Info("inventory", "loaded", {{"nodes", size()}});
  return Status::Ok();
}

void Inventory::OnChange(const coord::ChangePtr& c) {
  if (coord::ParentPath(c->path) != kNodesPath) return;  // progress, events, ...
  std::string id(coord::BaseName(c->path));
  std::lock_guard lock(mu_);
  if (c->type == coord::EventType::kDeleted) {
    EraseLocked(id);
    return;
  }
  if (!c->data) return;
  auto json = ParseJson(*c->data, c->path);
  auto node = json.ok() ? Node::FromJson(*json, id) : Result<Node>(json.status());
  if (!node.ok()) {
    log::Warn("inventory", "ignoring unreadable node record",
              {{"path", c->path}, {"error", node.status().message()}});
    return;
  }
  node->version = c->version;
  auto it = nodes_.find(id);
  // A replayed change older than what the initial load saw.
  if (it != nodes_.end() && it->second.version > c->version &&
      c->type == coord::EventType::kChanged)
    return;
  pending_.erase(id);
  PutLocked(std::move(*node));
}

void Inventory::PutLocked(Node n) {
  EraseLocked(n.id);
  for (const auto& m : n.macs) by_mac_[m.ToString()] = n.id;
  if (!n.enroll_token.empty()) by_token_[n.enroll_token] = n.id;
  if (!n.agent_token.empty() && hooks_.set) hooks_.set(n.id, n.agent_token);
  std::string id = n.id;
  nodes_[id] = std::move(n);
}

void Inventory::EraseLocked(const std::string& id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  for (const auto& m : it->second.macs) {
    auto b = by_mac_.find(m.ToString());
    if (b != by_mac_.end() && b->second == id) by_mac_.erase(b);
  }
  if (!it->second.enroll_token.empty()) by_token_.erase(it->second.enroll_token);
  if (!it->second.agent_token.empty() && hooks_.remove) hooks_.remove(id);
  nodes_.erase(it);
}

const Node* Inventory::FindLocked(std::string_view name_or_mac) const {
  auto it = nodes_.find(std::string(name_or_mac));
  if (it != nodes_.end()) return &it->second;
  auto mac = pxe::ParseMac(name_or_mac);
  if (!mac.ok()) return nullptr;
  auto b = by_mac_.find(mac->ToString());
  if (b == by_mac_.end()) return nullptr;
  auto n = nodes_.find(b->second);
  return n == nodes_.end() ? nullptr : &n->second;
}

size_t Inventory::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

std::vector<Node> Inventory::List() const {
  std::lock_guard lock(mu_);
  std::vector<Node> out;
  for (const auto& [id, n] : nodes_) out.push_back(n);
  return out;
}

Result<Node> Inventory::Get(std::string_view name_or_mac) const {
  std::lock_guard lock(mu_);
  const Node* n = FindLocked(name_or_mac);
  if (!n) return NoSuchNode(name_or_mac);
  return *n;
}

Result<Node> Inventory::Fetch(const std::string& id) {
  KILN_ASSIGN_OR_RETURN(auto got, store_.Get(NodePath(id)));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(got.data, NodePath(id)));
  KILN_ASSIGN_OR_RETURN(Node n, Node::FromJson(j, id));
  n.version = got.stat.version;
  return n;
}

Result<std::vector<coord::Op>> Inventory::DeleteTreeOps(const std::string& path) {
  std::vector<coord::Op> ops;
  auto children = store_.Children(path);
  if (!children.ok()) {
    if (children.status().code() == Code::kNotFound) return ops;
    return children.status();
  }
  for (const auto& c : children->children) {
    KILN_ASSIGN_OR_RETURN(auto sub, DeleteTreeOps(coord::JoinPath(path, c)));
    ops.insert(ops.end(), sub.begin(), sub.end());
  }
  ops.push_back(coord::DeleteOp{path});
  return ops;
}

Result<Node> Inventory::Add(const NodeSpec& spec) {
  KILN_RETURN_IF_ERROR(ValidateNodeName(spec.name));
  if (!spec.hostname.empty()) {
    if (auto s = ValidateNodeName(spec.hostname); !s.ok())
      return InvalidArgument(
          fmt::format("hostname \"{}\" is not valid: use 1-63 lower-case letters, digits and '-'",
                      spec.hostname));
  }
  if (spec.macs.empty())
    return InvalidArgument(fmt::format("node {} needs at least one --mac to boot from", spec.name));
  Node n;
  n.id = spec.name;
  n.hostname = spec.hostname.empty() ? spec.name : spec.hostname;
  for (const auto& text : spec.macs) {
    KILN_ASSIGN_OR_RETURN(pxe::Mac m, pxe::ParseMac(text));
    if (std::find(n.macs.begin(), n.macs.end(), m) == n.macs.end()) n.macs.push_back(m);
  }
  for (const auto& c : spec.classes) {
    KILN_RETURN_IF_ERROR(ValidateClassName(c));
    if (std::find(n.classes.begin(), n.classes.end(), c) == n.classes.end()) n.classes.push_back(c);
  }
  if (!spec.image.empty()) KILN_RETURN_IF_ERROR(ValidateImageRef(spec.image));
  n.image = spec.image;
  // A node added by hand boots its disk until told to install: adding a
  // running machine to the inventory must not wipe it.
  n.boot = spec.boot.value_or(pxe::BootTarget::kLocalboot);
  n.state = "new";
  n.created_ms = n.updated_ms = NowMs();
  if (NeedsToken(n.boot)) n.enroll_token = NewEnrollToken();

  std::lock_guard wlock(write_mu_);
  std::vector<Node> adopted;
  {
    std::lock_guard lock(mu_);
    if (nodes_.count(n.id)) return AlreadyExists(fmt::format("node {} already exists", n.id));
    for (const auto& m : n.macs) {
      auto b = by_mac_.find(m.ToString());
      if (b == by_mac_.end()) continue;
      const Node& owner = nodes_.at(b->second);
      if (!owner.discovered())
        return AlreadyExists(
            fmt::format("MAC {} already belongs to node {}", m.ToString(), owner.id));
      if (std::none_of(adopted.begin(), adopted.end(),
                       [&](const Node& a) { return a.id == owner.id; }))
        adopted.push_back(owner);
    }
  }
  std::vector<coord::Op> ops;
  for (const auto& d : adopted) {
    // The discovered record goes; what its agent reported stays.
    if (n.facts.empty()) n.facts = d.facts;
    KILN_ASSIGN_OR_RETURN(auto del, DeleteTreeOps(NodePath(d.id)));
    ops.insert(ops.end(), del.begin(), del.end());
    for (const auto& m : d.macs) ops.push_back(coord::DeleteOp{MacPath(m)});
  }
  ops.push_back(coord::CreateOp{NodePath(n.id), n.ToJson(true).dump()});
  for (const auto& m : n.macs) ops.push_back(coord::CreateOp{MacPath(m), n.id});
  auto r = store_.Multi(std::move(ops));
  if (!r.ok()) {
    if (r.status().code() == Code::kAlreadyExists)
      return AlreadyExists(
          fmt::format("node {} or one of its MACs was added by someone else meanwhile ({})", n.id,
                      r.status().message()));
    return r.status().WithContext("adding node " + n.id);
  }
  for (const auto& d : adopted)
    log::Info("inventory", "discovered node adopted", {{"node", n.id}, {"discovered", d.id}});
  log::Info("inventory", "node added", {{"node", n.id}, {"boot", pxe::BootTargetName(n.boot)}});
  auto now = Get(n.id);
  if (now.ok()) return now;
  n.version = 0;
  return n;
}

Status Inventory::Remove(std::string_view name_or_mac) {
  std::lock_guard wlock(write_mu_);
  Node n;
  {
    std::lock_guard lock(mu_);
    const Node* found = FindLocked(name_or_mac);
    if (!found) return NoSuchNode(name_or_mac);
    n = *found;
  }
  KILN_ASSIGN_OR_RETURN(auto ops, DeleteTreeOps(NodePath(n.id)));
  for (const auto& m : n.macs) {
    auto owner = store_.Get(MacPath(m));
    if (owner.ok() && owner->data == n.id) ops.push_back(coord::DeleteOp{MacPath(m)});
  }
  auto r = store_.Multi(std::move(ops));
  if (!r.ok()) return r.status().WithContext("removing node " + n.id);
  log::Info("inventory", "node removed", {{"node", n.id}});
  return Status::Ok();
}

Result<Node> Inventory::Update(std::string_view name_or_mac,
                               const std::function<Status(Node&)>& change) {
  std::lock_guard wlock(write_mu_);
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id;
    {
      std::lock_guard lock(mu_);
      const Node* found = FindLocked(name_or_mac);
      if (!found) return NoSuchNode(name_or_mac);
      id = found->id;
    }
    auto n = Fetch(id);
    if (!n.ok()) {
      if (n.status().code() == Code::kNotFound) return NoSuchNode(name_or_mac);
      return n.status();
    }
    KILN_RETURN_IF_ERROR(change(*n));
    n->updated_ms = NowMs();
    auto r = store_.Set(NodePath(id), n->ToJson(true).dump(), n->version);
    if (r.ok()) {
      auto now = Get(id);
      if (now.ok()) return now;
      n->version = r->stat.version;
      return *n;
    }
    if (r.status().code() != Code::kBadVersion)
      return r.status().WithContext("updating node " + id);
    // Someone else (the agent, another server) wrote first: read again.
  }
  return Unavailable(fmt::format("node {} keeps changing under us; retry", name_or_mac));
}

Result<Node> Inventory::SetBoot(std::string_view name_or_mac, pxe::BootTarget target) {
  auto r = Update(name_or_mac, [&](Node& n) {
    n.boot = target;
    n.extra.erase("wave");  // out of any install wave: this boot is the operator's call
    if (NeedsToken(target) && n.enroll_token.empty()) n.enroll_token = NewEnrollToken();
    return Status::Ok();
  });
  if (r.ok())
    log::Info("inventory", "next boot set",
              {{"node", r->id}, {"boot", pxe::BootTargetName(target)}});
  return r;
}

Result<Node> Inventory::QueueInstall(std::string_view name_or_mac, const std::string& wave,
                                     int max_parallel) {
  if (wave.empty() || wave.size() > 64 ||
      wave.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos)
    return InvalidArgument("wave: 1-64 lower-case letters, digits, '-' or '_'");
  if (max_parallel < 1 || max_parallel > 100000)
    return InvalidArgument("max_parallel: from 1 to 100000");
  auto r = Update(name_or_mac, [&](Node& n) {
    n.boot = pxe::BootTarget::kInstall;
    if (n.enroll_token.empty()) n.enroll_token = NewEnrollToken();
    n.state = "queued";
    n.extra["wave"] = {{"id", wave}, {"max_parallel", max_parallel}};
    n.extra.erase("state_message");
    return Status::Ok();
  });
  if (r.ok()) {
    std::lock_guard lock(mu_);
    admitted_ms_.erase(r->id);  // a new wave: it waits its turn again
    log::Info("inventory", "install queued",
              {{"node", r->id}, {"wave", wave}, {"max_parallel", max_parallel}});
  }
  return r;
}

std::string Inventory::WaveWaitLocked(const Node& n) {
  if (n.boot != pxe::BootTarget::kInstall || !n.extra.contains("wave") ||
      !n.extra["wave"].is_object() || n.state == "installing")
    return "";
  const std::string wave = n.extra["wave"].value("id", "");
  const int max = n.extra["wave"].value("max_parallel", 0);
  if (wave.empty() || max < 1) return "";
  // A slot is held while the install environment loads: long enough for a
  // slow TFTP or HTTP download, short enough that a machine that never
  // started its agent does not hold it forever.
  constexpr int64_t kHoldMs = 15 * 60 * 1000;
  int64_t now = NowMs();
  if (auto a = admitted_ms_.find(n.id); a != admitted_ms_.end() && now - a->second < kHoldMs)
    return "";  // it has its slot (a retry, a second request of the boot)
  int in_flight = 0, waiting = 0;
  for (const auto& [id, m] : nodes_) {
    if (id == n.id || m.boot != pxe::BootTarget::kInstall || !m.extra.contains("wave") ||
        !m.extra["wave"].is_object() || m.extra["wave"].value("id", "") != wave)
      continue;
    auto a = admitted_ms_.find(id);
    bool holds = m.state == "installing" ||
                 (m.state == "queued" && a != admitted_ms_.end() && now - a->second < kHoldMs);
    if (holds)
      ++in_flight;
    else if (m.state == "queued")
      ++waiting;
  }
  if (in_flight < max) {
    admitted_ms_[n.id] = now;
    log::Info(
        "inventory", "wave slot given",
        {{"node", n.id}, {"wave", wave}, {"in_flight", in_flight + 1}, {"max_parallel", max}});
    return "";
  }
  return fmt::format("install wave {}: {} of {} installing, {} other(s) waiting", wave, in_flight,
                     max, waiting);
}

Result<Node> Inventory::MarkInstalled(std::string_view id, const std::string& image) {
  if (!image.empty()) KILN_RETURN_IF_ERROR(ValidateImageRef(image));
  auto r = Update(id, [&](Node& n) {
    n.state = "installed";
    n.extra.erase("wave");
    n.installed_image = image.empty() ? n.image : image;
    n.boot = pxe::BootTarget::kLocalboot;
    return Status::Ok();
  });
  if (r.ok())
    log::Info("inventory", "node installed; next boot localboot",
              {{"node", r->id}, {"image", r->installed_image}});
  return r;
}

Result<Node> Inventory::MarkRunning(std::string_view id, const std::string& image,
                                    const std::string& message) {
  if (!image.empty()) KILN_RETURN_IF_ERROR(ValidateImageRef(image));
  auto r = Update(id, [&](Node& n) {
    n.state = "installed";
    if (!image.empty()) n.installed_image = image;
    if (message.empty())
      n.extra.erase("state_message");
    else
      n.extra["state_message"] = message;
    return Status::Ok();
  });
  if (r.ok())
    log::Info("inventory", "node runs its image",
              {{"node", r->id}, {"image", r->installed_image}, {"message", message}});
  return r;
}

Result<Node> Inventory::SetState(std::string_view id, const std::string& state,
                                 const std::string& message, const std::string& only_if) {
  if (state.empty() || state.size() > 32) return InvalidArgument("a node state is 1-32 characters");
  bool changed = false;
  auto r = Update(id, [&](Node& n) {
    if (!only_if.empty() && n.state != only_if) return Status::Ok();
    changed = n.state != state || n.extra.value("state_message", "") != message;
    n.state = state;
    if (message.empty())
      n.extra.erase("state_message");
    else
      n.extra["state_message"] = message;
    return Status::Ok();
  });
  if (r.ok() && changed)
    log::Info("inventory", "node state", {{"node", r->id}, {"state", state}, {"message", message}});
  return r;
}

Result<Node> Inventory::SetExtra(std::string_view id, const std::string& key, const Json& value) {
  return Update(id, [&](Node& n) {
    if (value.is_null())
      n.extra.erase(key);
    else
      n.extra[key] = value;
    return Status::Ok();
  });
}

Result<Node> Inventory::SetFacts(std::string_view id, const Json& facts) {
  if (!facts.is_object()) return InvalidArgument("facts must be a JSON object");
  return Update(id, [&](Node& n) {
    n.facts = facts;
    return Status::Ok();
  });
}

Result<Enrollment> Inventory::Enroll(std::string_view token) {
  const Status invalid = Unauthenticated(
      "enrollment token is not valid: it was used already or replaced (boot the machine "
      "through kiln again for a fresh one)");
  std::string id;
  {
    std::lock_guard lock(mu_);
    auto it = token.empty() ? by_token_.end() : by_token_.find(std::string(token));
    if (it == by_token_.end()) return invalid;
    id = it->second;
  }
  std::string agent_token = RandomHex(32);
  auto r = Update(id, [&](Node& n) {
    if (n.enroll_token.empty() || n.enroll_token != token) return invalid;
    // Spent: the node's next boot carries a fresh one.
    n.enroll_token = NewEnrollToken();
    n.agent_token = agent_token;
    if (n.state == "new") n.state = "enrolled";
    return Status::Ok();
  });
  if (!r.ok()) return r.status();
  if (hooks_.set) hooks_.set(r->id, agent_token);
  log::Info("inventory", "node enrolled", {{"node", r->id}});
  return Enrollment{*r, agent_token};
}

Result<pxe::BootDecision> Inventory::Resolve(const pxe::BootQuery& q) {
  pxe::BootDecision d;
  std::unique_lock lock(mu_);
  const Node* n = FindLocked(q.mac.ToString());
  std::string id = DiscoveredId(q.mac);
  if (!n) {
    auto p = pending_.find(id);
    if (p != pending_.end()) n = &p->second;
  }
  if (n) {
    d.target = n->boot;
    d.node = n->id;
    d.hostname = n->hostname;
    d.wait = WaveWaitLocked(*n);
    if (NeedsToken(n->boot) && d.wait.empty()) d.token = n->enroll_token;
    return d;
  }
  // A MAC kiln has never seen: record it as discovered. The write goes on
  // in the background (this runs on the TFTP thread); until it lands, the
  // pending record answers repeated requests with the same token.
  Node nd;
  nd.id = id;
  nd.hostname = id;
  nd.macs = {q.mac};
  nd.boot = pxe::BootTarget::kDiscover;
  nd.state = "discovered";
  nd.created_ms = nd.updated_ms = NowMs();
  nd.facts = Json::object();
  nd.extra["first_boot"] = {{"via", q.via}, {"client", q.client_ip}, {"firmware", q.firmware}};
  nd.enroll_token = NewEnrollToken();
  d.target = nd.boot;
  d.node = nd.id;
  d.hostname = nd.hostname;
  d.token = nd.enroll_token;
  std::vector<coord::Op> ops = {coord::CreateOp{NodePath(id), nd.ToJson(true).dump()},
                                coord::CreateOp{MacPath(q.mac), id}};
  pending_[id] = std::move(nd);
  ++inflight_;
  lock.unlock();
  log::Info("inventory", "unknown MAC booted; recording a discovered node",
            {{"mac", q.mac.ToString()}, {"node", id}, {"via", q.via}, {"client", q.client_ip}});
  store_.MultiAsync(std::move(ops), [this, id](Result<coord::MultiResult> r) {
    std::lock_guard l(mu_);
    pending_.erase(id);
    if (!r.ok())
      log::Warn("inventory", "could not record discovered node",
                {{"node", id}, {"error", r.status().ToString()}});
    --inflight_;
    inflight_cv_.notify_all();
  });
  return d;
}

}  // namespace kiln::inventory
