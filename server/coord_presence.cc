#include "server/coord_presence.h"

#include "common/log.h"

namespace kiln {

Status CreateKilnNamespace(coord::CoordStore& store) {
  for (const char* path : kKilnNamespace) {
    Status s = store.EnsurePath(path);
    if (!s.ok()) return s.WithContext("creating the coordination namespace");
  }
  return Status::Ok();
}

ServerPresence::ServerPresence(coord::CoordStore* store, std::string id, Json info,
                               std::chrono::milliseconds timeout)
    : store_(store),
      path_(std::string("/kiln/servers/") + id),
      info_(info.dump()),
      timeout_(timeout) {}

Result<std::unique_ptr<ServerPresence>> ServerPresence::Start(coord::CoordStore* store,
                                                              std::string id, Json info,
                                                              std::chrono::milliseconds timeout) {
  std::unique_ptr<ServerPresence> p(new ServerPresence(store, std::move(id), std::move(info), timeout));
  KILN_RETURN_IF_ERROR(p->Register());
  p->thread_ = std::thread([raw = p.get()] { raw->HeartbeatLoop(); });
  return p;
}

Status ServerPresence::Register() {
  auto session = store_->CreateSession(timeout_);
  if (!session.ok()) return session.status().WithContext("opening the server's session");
  session_ = session->id;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto created = store_->Create(coord::CreateOp{
        .path = path_, .data = info_, .ephemeral = true, .session = session->id});
    if (created.ok()) return Status::Ok();
    if (created.status().code() != Code::kAlreadyExists)
      return created.status().WithContext("registering " + path_);
    // Left by an earlier run whose session has not expired yet: this server
    // is the one alive under that name now.
    auto old = store_->Exists(path_);
    if (old.ok() && old->has_value()) {
      log::Info("serve", "replacing a stale server registration",
                {{"path", path_}, {"old_session", (*old)->ephemeral_owner}});
      (void)store_->Delete(path_, (*old)->version);
    }
  }
  return AlreadyExists(path_ + ": another live server holds this name");
}

void ServerPresence::HeartbeatLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, timeout_ / 3, [&] { return stop_; });
    if (stop_) break;
    lock.unlock();
    Status s = store_->Heartbeat(session_.load());
    if (s.code() == Code::kSessionExpired) {
      // We were gone too long (a paused process, a lost connection): come
      // back under a new session.
      log::Warn("serve", "server session expired; registering again", {{"path", path_}});
      s = Register();
      ++reregistrations_;
    }
    lock.lock();
    last_error_ = s.ok() ? "" : s.ToString();
  }
}

ServerPresence::~ServerPresence() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status s = store_->CloseSession(session_.load());
  if (!s.ok()) log::Warn("serve", "closing the server session", {{"error", s.message()}});
}

Json ServerPresence::Describe() const {
  Json j = {{"registered_as", path_},
            {"session", session_.load()},
            {"reregistrations", reregistrations_.load()}};
  std::lock_guard lock(mu_);
  if (!last_error_.empty()) j["heartbeat_error"] = last_error_;
  return j;
}

}  // namespace kiln
