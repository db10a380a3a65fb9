#pragma once
// The node inventory: every machine kiln knows, kept in the coordination
// store and mirrored in memory.
//
//   /kiln/nodes/<id>     the node record (server/inventory/node.h)
//   /kiln/macs/<mac>     "<id>": the MAC index, created and deleted in the
//                        same multi as the record, so a MAC belongs to one
//                        node even with several kiln servers on one
//                        ZooKeeper ensemble ("525400123456")
//
// The in-memory mirror is loaded at Open and kept current by a recursive
// watch stream on /kiln/nodes, so it also follows other servers' and the
// agent's writes. Reads (List, Get, Resolve) answer from it; Resolve never
// waits, so the TFTP thread can call it during a boot storm.
//
// Writes go to the store first (a multi or a versioned set, retried on a
// version conflict) and reach the mirror when they are durable. They use
// the store's synchronous calls: call them from HTTP or CLI threads, never
// from a store callback.
//
// Enrollment: a node booting install or discover gets a one-time
// enrollment token on its kernel command line. POST /api/v1/enroll trades
// it for a node token (the agent's credential) and replaces it with a
// fresh one for the node's next boot, so each token enrolls once.
//
// Thread safety: every method is thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "pxe/boot_resolver.h"
#include "server/coord/coord_store.h"
#include "server/inventory/node.h"

namespace kiln::inventory {

inline constexpr const char* kNodesPath = "/kiln/nodes";
inline constexpr const char* kMacsPath = "/kiln/macs";

struct NodeSpec {
  std::string name;
  std::vector<std::string> macs;  // any spelling ParseMac takes
  std::vector<std::string> classes;
  std::string image;
  std::string hostname;                 // default: the name
  std::optional<pxe::BootTarget> boot;  // default: install when an image is set, else discover
};

struct Enrollment {
  Node node;
  std::string token;  // the node token
};

// Told about node tokens so the HTTP authenticator accepts them.
struct TokenHooks {
  std::function<void(const std::string& node, const std::string& token)> set;
  std::function<void(const std::string& node)> remove;
};

class Inventory : public pxe::BootResolver {
 public:
  // Creates /kiln/nodes and /kiln/macs if missing, loads every node and
  // subscribes to changes. store must outlive the inventory.
  static Result<std::unique_ptr<Inventory>> Open(coord::CoordStore& store, TokenHooks hooks = {});
  ~Inventory() override;

  // Sorted by id.
  std::vector<Node> List() const;
  // By id or by any of the node's MACs. kNotFound names what was asked.
  Result<Node> Get(std::string_view name_or_mac) const;

  // kInvalidArgument for a bad name, MAC, class or image; kAlreadyExists
  // when the name is taken or a MAC belongs to another node. A MAC that
  // belongs to a discovered node is adopted: that record goes, its facts
  // come along.
  Result<Node> Add(const NodeSpec& spec);
  // Deletes the record, its children (progress, events) and its MACs.
  Status Remove(std::string_view name_or_mac);
  // Sets the next boot. install and discover get an enrollment token if
  // the node has none.
  Result<Node> SetBoot(std::string_view name_or_mac, pxe::BootTarget target);
  // Install at the next boot as one of an install wave: at most
  // max_parallel nodes of the wave install at once, first come first
  // served; the others' boot configs wait and ask again (Resolve). State
  // "queued" until the node's agent starts ("installing").
  Result<Node> QueueInstall(std::string_view name_or_mac, const std::string& wave,
                            int max_parallel);
  // The agent's report of a successful install: state installed, the image
  // it installed, and the next boot localboot.
  Result<Node> MarkInstalled(std::string_view id, const std::string& image);
  // The verdict of an update or rollback on an installed host: state
  // installed again (the host runs image; a failed update was undone), the
  // image it runs, and message ("" clears it). The boot target stays.
  Result<Node> MarkRunning(std::string_view id, const std::string& image,
                           const std::string& message);
  // Records what the node is doing ("installing", "failed", "lost", ...)
  // and why; the boot target is left alone. only_if, when not empty, makes
  // it a no-op (returning the node as it is) unless the node is in that
  // state now: "lost" must not overwrite "installed".
  Result<Node> SetState(std::string_view id, const std::string& state, const std::string& message,
                        const std::string& only_if = "");
  // Sets or clears (empty) a field the inventory does not interpret, kept
  // in Node::extra (install log location, the agent's reported image).
  Result<Node> SetExtra(std::string_view id, const std::string& key, const Json& value);
  // Replaces the node's facts (what its agent found: docs/AGENT.md); class
  // rules read them when the node's plan is made.
  Result<Node> SetFacts(std::string_view id, const Json& facts);
  // kUnauthenticated when no node holds the token.
  Result<Enrollment> Enroll(std::string_view token);

  // pxe::BootResolver. Unknown MACs are recorded as discovered nodes
  // (written asynchronously) and boot discover.
  Result<pxe::BootDecision> Resolve(const pxe::BootQuery& q) override;

  size_t size() const;

 private:
  explicit Inventory(coord::CoordStore& store, TokenHooks hooks)
      : store_(store), hooks_(std::move(hooks)) {}
  Status Load();
  void OnChange(const coord::ChangePtr& c);
  // REQUIRES: mu_ held.
  void PutLocked(Node n);
  void EraseLocked(const std::string& id);
  const Node* FindLocked(std::string_view name_or_mac) const;
  // Why n must wait for a slot in its install wave ("" when it may go now,
  // which takes the slot). REQUIRES: mu_ held.
  std::string WaveWaitLocked(const Node& n);
  // Reads a node from the store (not the mirror), with its version.
  Result<Node> Fetch(const std::string& id);
  // Read-modify-write with the znode version, retried on conflicts.
  Result<Node> Update(std::string_view name_or_mac, const std::function<Status(Node&)>& change);
  // Deletes for a node's subtree, children first.
  Result<std::vector<coord::Op>> DeleteTreeOps(const std::string& path);

  coord::CoordStore& store_;
  TokenHooks hooks_;
  std::unique_ptr<coord::WatchStream> stream_;

  mutable std::mutex mu_;
  std::map<std::string, Node> nodes_;
  std::unordered_map<std::string, std::string> by_mac_;    // "52:54:..." -> id
  std::unordered_map<std::string, std::string> by_token_;  // enroll token -> id
  std::map<std::string, Node> pending_;                    // discovered, write in flight
  // Wave members given the install config and not yet "installing": they
  // hold their slot while they load the install environment (this
  // server's memory only; a restart forgets them, see docs/OPERATOR.md).
  std::unordered_map<std::string, int64_t> admitted_ms_;

  std::mutex write_mu_;  // one writer at a time (per server)

  // Discovered-node writes still in flight; the destructor waits for them
  // (their completions use this object).
  std::condition_variable inflight_cv_;
  int inflight_ = 0;
};

}  // namespace kiln::inventory
