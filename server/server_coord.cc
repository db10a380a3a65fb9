// Server's coordination-store wiring: open, namespace, status, metrics and
// the server's own live registration. Kept apart from server.cc so that
// the core stays small.

#include <unistd.h>

#include <fmt/format.h>

#include "common/log.h"
#include "common/version.h"
#include "server/coord_presence.h"
#include "server/server.h"

namespace kiln {

Status Server::StartCoord() {
  coord::CoordOptions copts;
  copts.url = options_.coord_url.empty() ? "embedded:" + data_dir_->Sub("coord") : options_.coord_url;
  auto store = coord::CoordStore::Open(copts);
  if (!store.ok()) return store.status().WithContext("coordination store " + copts.url);
  coord_ = std::move(*store);
  KILN_RETURN_IF_ERROR(CreateKilnNamespace(*coord_));

  AddStatusSection("coord", [this] {
    Json j = coord_->Describe();
    if (presence_) j["server"] = presence_->Describe();
    return j;
  });
  metrics_.Gauge("kiln_coord_zxid", "Last zxid visible to reads", {},
                 [this] { return static_cast<double>(coord_->LastZxid()); });
  for (const auto& [name, value] : coord_->Counters()) {
    std::string n = name;
    metrics_.Gauge(n, "Coordination store counter (see docs/OPERATOR.md)", {}, [this, n] {
      for (const auto& [k, v] : coord_->Counters())
        if (k == n) return v;
      return 0.0;
    });
  }
  return Status::Ok();
}

Status Server::RegisterPresence() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "kiln");
  std::string id = fmt::format("{}:{}", host, http_->address().port);
  Json info = {{"url", url_}, {"pid", ::getpid()}, {"version", kVersion}};
  auto presence = ServerPresence::Start(coord_.get(), id, info, std::chrono::seconds(10));
  if (!presence.ok()) return presence.status();
  presence_ = std::move(*presence);
  log::Info("serve", "registered in the coordination store", {{"path", presence_->path()}});
  return Status::Ok();
}

}  // namespace kiln
