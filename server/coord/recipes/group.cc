#include "server/coord/recipes/group.h"

#include <mutex>

#include "server/coord/invoke.h"
#include "server/coord/path.h"

namespace kiln::coord::recipes {

Result<std::vector<Member>> ListMembers(CoordStore& store, const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(auto kids, store.Children(dir));
  std::vector<Member> out;
  for (const auto& name : kids.children) {
    auto got = store.Get(JoinPath(dir, name));
    if (!got.ok()) {
      if (got.status().code() == Code::kNotFound) continue;  // left meanwhile
      return got.status();
    }
    out.push_back(Member{name, std::move(got->data), got->stat.ephemeral_owner});
  }
  return out;
}

GroupMember::GroupMember(CoordStore& store, std::string dir, std::string name, SessionId session,
                         std::string data)
    : store_(store),
      dir_(std::move(dir)),
      name_(std::move(name)),
      session_(session),
      data_(std::move(data)) {}

GroupMember::~GroupMember() {
  if (joined_ && !InStoreCallback()) (void)Leave();
}

Status GroupMember::Join() {
  if (joined_) return AlreadyExists("group " + dir_ + ": already joined as " + name_);
  if (name_.empty() || name_.find('/') != std::string::npos)
    return InvalidArgument("group " + dir_ + ": member name '" + name_ +
                           "' must be one path component");
  KILN_RETURN_IF_ERROR(store_.EnsurePath(dir_));
  auto created = store_.Create(CreateOp{
      .path = JoinPath(dir_, name_), .data = data_, .ephemeral = true, .session = session_});
  if (!created.ok()) return created.status();
  joined_ = true;
  return Status::Ok();
}

Status GroupMember::Update(std::string data) {
  if (!joined_) return FailedPrecondition("group " + dir_ + ": " + name_ + " has not joined");
  KILN_ASSIGN_OR_RETURN(auto set, store_.Set(JoinPath(dir_, name_), data));
  (void)set;
  data_ = std::move(data);
  return Status::Ok();
}

Status GroupMember::Leave() {
  if (!joined_) return Status::Ok();
  Status s = store_.Delete(JoinPath(dir_, name_));
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  joined_ = false;
  return Status::Ok();
}

// Locking as in leader.cc: `mu` guards the fields and is never held across
// a store call; `cb_mu` is held while a user callback runs and while Stop
// marks the state stopped.
struct GroupWatch::State {
  CoordStore* store;
  std::string dir;
  std::function<void(const std::vector<std::string>&)> on_change;
  std::function<void(Status)> on_end;

  std::mutex cb_mu;
  std::mutex mu;
  bool stopped = false;
  bool ended = false;
  bool delivered = false;
  std::vector<std::string> last;
};

namespace {

using StatePtr = std::shared_ptr<GroupWatch::State>;

void End(const StatePtr& s, Status why) {
  std::lock_guard cb(s->cb_mu);
  {
    std::lock_guard lock(s->mu);
    if (s->stopped || s->ended) return;
    s->ended = true;
  }
  Invoke("group on_end", s->on_end, why);
}

void Follow(const StatePtr& s) {
  auto watcher = [s](const WatchEvent& ev) {
    if (ev.type == EventType::kNotWatching) {
      End(s, Unavailable("group " + s->dir + ": the store stopped watching"));
    } else {
      Follow(s);  // kChildren re-reads and re-arms; kDeleted ends below
    }
  };
  s->store->ChildrenAsync(s->dir, watcher, [s](Result<ChildrenResult> r) {
    if (!r.ok()) return End(s, r.status());
    std::lock_guard cb(s->cb_mu);
    {
      std::lock_guard lock(s->mu);
      if (s->stopped || s->ended) return;
      // A data change of the group node itself never reaches here; an
      // unchanged list (e.g. a member left and rejoined in between) is
      // not reported twice.
      if (s->delivered && s->last == r->children) return;
      s->delivered = true;
      s->last = r->children;
    }
    Invoke("group on_change", s->on_change, r->children);
  });
}

}  // namespace

GroupWatch::GroupWatch(CoordStore& store, std::string dir,
                       std::function<void(const std::vector<std::string>&)> on_change,
                       std::function<void(Status)> on_end)
    : state_(std::make_shared<State>()) {
  state_->store = &store;
  state_->dir = std::move(dir);
  state_->on_change = std::move(on_change);
  state_->on_end = std::move(on_end);
}

GroupWatch::~GroupWatch() {
  Stop();
}

Status GroupWatch::Start() {
  KILN_RETURN_IF_ERROR(state_->store->EnsurePath(state_->dir));
  Follow(state_);
  return Status::Ok();
}

void GroupWatch::Stop() {
  std::lock_guard cb(state_->cb_mu);
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
}

}  // namespace kiln::coord::recipes
