#include "classes/space_service.h"

#include "common/log.h"

namespace kiln::classes {

SpaceService::SpaceService(SpaceServiceOptions options) : options_(std::move(options)) {}

SpaceService::~SpaceService() {
  Stop();
}

void SpaceService::Start() {
  {
    std::lock_guard lock(mu_);
    fingerprint_ = SpaceFingerprint(options_.dir);
  }
  Load();
  watcher_ = std::thread([this] { Watch(); });
}

void SpaceService::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<const Resolver> SpaceService::current() const {
  std::lock_guard lock(mu_);
  return resolver_;
}

std::string SpaceService::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

bool SpaceService::Load() {
  Diagnostics diags;
  auto space = LoadSpace(options_.dir, &diags);
  if (!space) {
    std::string first = diags.empty() ? "unknown error" : diags.items().front().OneLine();
    bool have_good;
    {
      std::lock_guard lock(mu_);
      have_good = resolver_ != nullptr;
      last_error_ = first;
      last_error_count_ = diags.size();
      failed_at_ = std::chrono::system_clock::now();
    }
    reloads_failed_.fetch_add(1);
    for (const auto& d : diags.items())
      log::Error("classes",
                 have_good ? "config space has errors; keeping the last good one"
                           : "config space has errors; no plans until it is fixed",
                 {{"space", options_.dir}, {"error", d.OneLine()}});
    return false;
  }
  auto resolver = std::make_shared<const Resolver>(space, options_.limits);
  uint64_t gen;
  {
    std::lock_guard lock(mu_);
    resolver_ = resolver;
    last_error_.clear();
    last_error_count_ = 0;
    loaded_at_ = std::chrono::system_clock::now();
    gen = generation_.fetch_add(1) + 1;
  }
  log::Info("classes", gen == 1 ? "config space loaded" : "config space reloaded",
            {{"space", options_.dir},
             {"digest", space->digest.substr(0, 12)},
             {"generation", gen},
             {"classes", space->declared.size()},
             {"rules", space->rules.size()},
             {"files", space->files.size()}});
  return true;
}

bool SpaceService::CheckNow() {
  std::string fp = SpaceFingerprint(options_.dir);
  {
    std::lock_guard lock(mu_);
    if (fp == fingerprint_) return false;
    fingerprint_ = fp;
  }
  return Load();
}

void SpaceService::Watch() {
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.poll, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    CheckNow();
    lock.lock();
  }
}

Json SpaceService::StatusJson() const {
  std::lock_guard lock(mu_);
  auto secs = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  Json j = {{"space", options_.dir}, {"generation", generation_.load()}};
  if (resolver_) {
    const Space& s = resolver_->space();
    j["digest"] = s.digest;
    j["loaded_at"] = secs(loaded_at_);
    j["classes"] = s.declared.size();
    j["rules"] = s.rules.size();
    j["files"] = s.files.size();
    j["sandboxes"] = resolver_->sandboxes();
  }
  j["failed_reloads"] = reloads_failed_.load();
  if (!last_error_.empty()) {
    j["state"] = resolver_ ? "error (serving the last good space)" : "error (no space loaded)";
    j["error"] = last_error_;
    j["errors"] = last_error_count_;
    j["failed_at"] = secs(failed_at_);
  } else {
    j["state"] = resolver_ ? "ok" : "not loaded";
  }
  return j;
}

}  // namespace kiln::classes
