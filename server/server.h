#pragma once
// `kiln serve`: owns the data directory and every service kiln runs, wires
// them to one router and one HTTP server, and stops them in order.
//
// Lifetime: Start() brings everything up or nothing (a failure stops what
// already started and returns the Status). Stop() is idempotent and is
// called by the destructor.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "common/json.h"
#include "common/status.h"
#include "server/auth.h"
#include "server/boot_service.h"
#include "server/coord/coord_store.h"
#include "server/data_dir.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/metrics.h"
#include "server/plan_service.h"

namespace kiln::imager {
class ImageStore;
}

namespace kiln {

namespace inventory {
class Inventory;
}
class ImagesApi;

// Two event loops per CPU, 2 to 64. A loop's send on loopback also runs the
// receiver's TCP work and wakes it, so a loop spends much of a watch
// fan-out in the kernel or preempted; with two per core the cores stay busy
// sending. On two cores, four loops against two: 1,000-stream fan-out p99
// 7.0-9.7 ms against 8.2-11.2, single updates +7%, batches unchanged
// (docs/BENCHMARKS.md).
int DefaultHttpThreads();

struct ServerOptions {
  std::string data_dir = "/var/lib/kiln";
  std::string listen = "0.0.0.0:7070";
  // HTTP event loops; 0: two per CPU (DefaultHttpThreads).
  int http_threads = 0;
  // The coordination store: "embedded:DIR" or "zk://host:port[,...]/chroot";
  // empty means embedded in DATA/coord.
  std::string coord_url;
  std::string space_dir;     // config space (--space); "" = none
  int space_poll_ms = 1000;  // how often to look for edits in it
  // Network boot: boot tree, TFTP, dnsmasq (server/boot_service.h).
  BootOptions boot;
};

class ServerPresence;
class NodeEvents;
class AgentSessions;
class StoreWaits;

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Stop();

  // A URL clients on this machine can use ("http://127.0.0.1:PORT").
  std::string url() const { return url_; }
  const DataDir& data_dir() const { return *data_dir_; }
  Metrics& metrics() { return metrics_; }
  // The coordination store. Lives from Start() until the Server is destroyed
  // (after every service that uses it).
  coord::CoordStore& coord() { return *coord_; }
  // Plans and the config space; the node inventory calls SetNodeLookup.
  PlanService& plans() { return *plans_; }
  imager::ImageStore& images() { return *images_; }
  const ServerOptions& options() const { return options_; }
  // Network boot; set from Start() on.
  BootService* boot() { return boot_.get(); }
  // Agents' events and live sessions; set from Start() on.
  NodeEvents* node_events() { return node_events_.get(); }
  AgentSessions* agents() { return agents_.get(); }
  // The node inventory; null while the coordination store is not running.
  inventory::Inventory* inventory() { return inventory_.get(); }
  // Long polls on the coordination store (server/store_waits.h).
  StoreWaits& waits() { return *waits_; }

  // A named section of GET /api/v1/status, sampled per request.
  void AddStatusSection(const std::string& name, std::function<Json()> fn);
  Json StatusJson() const;

 private:
  explicit Server(const ServerOptions& options);
  void RegisterRoutes();
  // server_coord.cc: opens the coordination store, creates the namespace,
  // exposes its state; then registers this server as alive in it.
  Status StartCoord();
  Status RegisterPresence();
  // server_boot.cc: the boot tree and inventory before the routes, TFTP and
  // dnsmasq once the HTTP port is known.
  Status PrepareBoot();
  // server_agents.cc: plan lookups, agent events and sessions (after the
  // inventory, before the routes).
  Status StartAgents();
  Status StartBootNetwork();
  void CountResponse(const http::Router::Route* route, const http::HttpRequest& req, int status,
                     double seconds);

  ServerOptions options_;
  std::unique_ptr<DataDir> data_dir_;
  std::unique_ptr<coord::CoordStore> coord_;
  std::unique_ptr<StoreWaits> waits_;  // after coord_: destroyed before it
  std::unique_ptr<ServerPresence> presence_;
  std::unique_ptr<TokenAuthenticator> auth_;
  std::unique_ptr<http::Router> router_;
  std::unique_ptr<http::HttpServer> http_;
  // Declared in dependency order: boot_ (TFTP thread) uses the resolver,
  // which uses inventory_; members are destroyed bottom-up.
  std::unique_ptr<inventory::Inventory> inventory_;
  std::unique_ptr<pxe::BootResolver> boot_resolver_;
  std::unique_ptr<BootService> boot_;
  std::unique_ptr<NodeEvents> node_events_;
  std::unique_ptr<AgentSessions> agents_;
  Metrics metrics_;
  std::unique_ptr<PlanService> plans_;
  std::string url_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();

  mutable std::mutex status_mu_;
  std::map<std::string, std::function<Json()>> status_sections_;
  // kiln_http_requests_total's counters by (route, method, status), so a
  // response costs one lookup instead of formatting its labels.
  std::mutex response_counters_mu_;
  std::map<std::tuple<const http::Router::Route*, std::string, int>, std::atomic<uint64_t>*>
      response_counters_;
  bool stopped_ = false;

  // Declared last: destroyed first, after Stop() has ended every request.
  std::unique_ptr<imager::ImageStore> images_;
  std::unique_ptr<ImagesApi> images_api_;
};

}  // namespace kiln
