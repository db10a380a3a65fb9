#include "server/coord/recipes/leader.h"

#include <algorithm>
#include <mutex>

#include "server/coord/invoke.h"
#include "server/coord/path.h"
#include "server/coord/recipes/sequence.h"

namespace kiln::coord::recipes {

// Shared with the asynchronous chain of reads and watchers, which may
// outlive the LeaderElection object.
//
// Locking: `mu` guards the fields and is never held across a store call
// or a user callback (a store read completes inline and may run on the
// commit thread, which holds the store's tree lock). `cb_mu` is held while
// a user callback runs and while Resign marks the state stopped, so that
// nothing runs after Resign returns; it is recursive so a callback may
// resign.
struct LeaderElection::State {
  CoordStore* store;
  std::string dir;
  SessionId session;
  std::string data;
  LeaderCallbacks callbacks;

  std::recursive_mutex cb_mu;
  mutable std::mutex mu;
  std::string node;
  bool leader = false;
  bool stopped = false;
  bool lost = false;
};

namespace {

using StatePtr = std::shared_ptr<LeaderElection::State>;

void Lose(const StatePtr& s, Status why) {
  std::lock_guard cb(s->cb_mu);
  {
    std::lock_guard lock(s->mu);
    if (s->stopped || s->lost) return;
    s->lost = true;
    s->leader = false;
  }
  Invoke("leader on_lost", s->callbacks.on_lost, why);
}

void Check(const StatePtr& s);

// A watcher that re-checks the election on its event, or gives up when the
// store can no longer watch (calling into a closing store from its own
// shutdown is not allowed).
Watcher Recheck(const StatePtr& s) {
  return [s](const WatchEvent& ev) {
    if (ev.type == EventType::kNotWatching) {
      Lose(s, Unavailable("election " + s->dir + ": the store stopped watching"));
    } else {
      Check(s);
    }
  };
}

void BecomeLeader(const StatePtr& s, const std::string& node) {
  // Watch our own znode: its delete means the session ended.
  s->store->ExistsAsync(
      node,
      [s](const WatchEvent& ev) {
        if (ev.type == EventType::kNotWatching) {
          Lose(s, Unavailable("election " + s->dir + ": the store stopped watching"));
        } else if (ev.type == EventType::kDeleted) {
          Lose(s, Status(Code::kSessionExpired,
                         "election " + s->dir + ": leader znode vanished (its session ended)"));
        }
      },
      [s, node](Result<std::optional<Stat>> r) {
        if (!r.ok()) return Lose(s, r.status());
        if (!r->has_value()) {
          return Lose(s, Status(Code::kSessionExpired,
                                "election " + s->dir + ": candidate " + node + " vanished"));
        }
        std::lock_guard cb(s->cb_mu);
        {
          std::lock_guard lock(s->mu);
          if (s->stopped || s->lost || s->leader) return;
          s->leader = true;
        }
        Invoke("leader on_elected", s->callbacks.on_elected);
      });
}

void Check(const StatePtr& s) {
  s->store->ChildrenAsync(s->dir, nullptr, [s](Result<ChildrenResult> r) {
    std::string node;
    {
      std::lock_guard lock(s->mu);
      if (s->stopped || s->lost) return;
      node = s->node;
    }
    if (!r.ok()) return Lose(s, r.status());
    auto order = SortBySequence(std::move(r->children));
    auto it = std::find(order.begin(), order.end(), std::string(BaseName(node)));
    if (it == order.end()) {
      return Lose(s, Status(Code::kSessionExpired, "election " + s->dir + ": candidate " + node +
                                                       " vanished (its session ended)"));
    }
    if (it == order.begin()) return BecomeLeader(s, node);
    std::string prev = JoinPath(s->dir, *(it - 1));
    s->store->ExistsAsync(prev, Recheck(s), [s](Result<std::optional<Stat>> e) {
      if (!e.ok()) return Lose(s, e.status());
      // Gone between the two reads: the watch (a create watch now) will
      // never fire for a sequential name, so re-read at once.
      if (!e->has_value()) Check(s);
    });
  });
}

}  // namespace

LeaderElection::LeaderElection(CoordStore& store, std::string dir, SessionId session,
                               std::string data, LeaderCallbacks callbacks)
    : state_(std::make_shared<State>()) {
  state_->store = &store;
  state_->dir = std::move(dir);
  state_->session = session;
  state_->data = std::move(data);
  state_->callbacks = std::move(callbacks);
}

LeaderElection::~LeaderElection() {
  (void)Resign();
}

Status LeaderElection::Start() {
  {
    std::lock_guard lock(state_->mu);
    if (!state_->node.empty() || state_->stopped)
      return FailedPrecondition("election " + state_->dir + ": already started");
  }
  if (state_->dir == "/") return InvalidArgument("election directory must not be the root");
  KILN_RETURN_IF_ERROR(state_->store->EnsurePath(state_->dir));
  KILN_ASSIGN_OR_RETURN(auto created,
                        state_->store->Create(CreateOp{.path = JoinPath(state_->dir, "candidate-"),
                                                       .data = state_->data,
                                                       .ephemeral = true,
                                                       .sequential = true,
                                                       .session = state_->session}));
  {
    std::lock_guard lock(state_->mu);
    state_->node = created.path;
  }
  Check(state_);
  return Status::Ok();
}

Status LeaderElection::Resign() {
  std::string node;
  {
    std::lock_guard cb(state_->cb_mu);
    std::lock_guard lock(state_->mu);
    if (state_->stopped) return Status::Ok();
    state_->stopped = true;
    state_->leader = false;
    node = state_->node;
  }
  if (node.empty()) return Status::Ok();
  if (InStoreCallback()) {
    state_->store->DeleteAsync(DeleteOp{.path = node}, [](Status) {});
    return Status::Ok();
  }
  Status s = state_->store->Delete(node);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  return Status::Ok();
}

bool LeaderElection::is_leader() const {
  std::lock_guard lock(state_->mu);
  return state_->leader;
}

std::string LeaderElection::node() const {
  std::lock_guard lock(state_->mu);
  return state_->node;
}

Result<LeaderElection::Leader> LeaderElection::CurrentLeader(CoordStore& store,
                                                             const std::string& dir) {
  // The lowest candidate may vanish between the two reads: retry then.
  for (;;) {
    KILN_ASSIGN_OR_RETURN(auto kids, store.Children(dir));
    auto order = SortBySequence(std::move(kids.children));
    if (order.empty()) return NotFound("election " + dir + ": no candidates");
    std::string node = JoinPath(dir, order.front());
    auto got = store.Get(node);
    if (got.ok()) return Leader{node, std::move(got->data)};
    if (got.status().code() != Code::kNotFound) return got.status();
  }
}

}  // namespace kiln::coord::recipes
