#include "agent/live_session.h"

namespace kiln::agent {

LiveSession::LiveSession(std::string server, std::string token, std::string node,
                         std::chrono::milliseconds timeout, Json info)
    : api_(server, token),
      token_(token),
      node_(std::move(node)),
      timeout_(timeout),
      info_(std::move(info)) {
  thread_ = std::thread([this] { Loop(); });
}

LiveSession::~LiveSession() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (id_ > 0) (void)api_.CloseSession(node_, id_);
}

bool LiveSession::open() const {
  std::lock_guard lock(mu_);
  return id_ > 0;
}

void LiveSession::SetInfo(Json info) {
  int64_t id;
  {
    std::lock_guard lock(mu_);
    info_ = std::move(info);
    id = id_;
  }
  // A session opened later carries the new info anyway.
  if (id > 0) (void)AgentApi(api_.server(), token_).UpdateSession(node_, id, info_);
}

void LiveSession::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    int64_t id = id_;
    lock.unlock();
    if (id <= 0) {
      Json info;
      {
        std::lock_guard info_lock(mu_);
        info = info_;
      }
      auto opened = api_.OpenSession(node_, timeout_, info);
      if (opened.ok()) id = *opened;
    } else {
      Status s = api_.Heartbeat(node_, id);
      // The server forgot the session (it restarted, or we were silent too
      // long): open a new one.
      if (s.code() == Code::kSessionExpired || s.code() == Code::kNotFound) id = 0;
    }
    lock.lock();
    id_ = id;
    cv_.wait_for(lock, id_ > 0 ? timeout_ / 3 : std::chrono::milliseconds(500),
                 [&] { return stop_; });
  }
}

}  // namespace kiln::agent
