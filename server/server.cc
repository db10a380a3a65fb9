#include "server/server.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "common/api_client.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/version.h"
#include "imager/image_store.h"
#include "server/agent_sessions.h"
#include "server/api_agent.h"
#include "server/api_boot.h"
#include "server/api_coord.h"
#include "server/api_images.h"
#include "server/api_jobs.h"
#include "server/api_meta.h"
#include "server/api_nodes.h"
#include "server/api_plan.h"
#include "server/api_pxe.h"
#include "server/coord_image_catalog.h"
#include "server/coord_presence.h"
#include "server/inventory/inventory.h"
#include "server/node_events.h"
#include "server/store_waits.h"

namespace kiln {

int DefaultHttpThreads() {
  // The CPUs this process may run on (a cpuset or taskset narrows them),
  // not every CPU the machine has.
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  return static_cast<int>(std::clamp<long>(2 * cpus, 2, 64));
}

Server::Server(const ServerOptions& options) : options_(options) {
  if (options_.http_threads <= 0) options_.http_threads = DefaultHttpThreads();
}

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> s(new Server(options));
  KILN_ASSIGN_OR_RETURN(DataDir dir, DataDir::Open(options.data_dir));
  s->data_dir_ = std::make_unique<DataDir>(std::move(dir));
  KILN_RETURN_IF_ERROR(s->StartCoord());
  s->waits_ = std::make_unique<StoreWaits>(s->coord_.get());
  s->auth_ = std::make_unique<TokenAuthenticator>(s->data_dir_->admin_token());
  s->router_ = std::make_unique<http::Router>(s->auth_.get());
  // Image records live in the coordination store (/kiln/images/<name>),
  // objects in DATA/images.
  auto catalog = CoordImageCatalog::Open(s->coord_.get());
  if (!catalog.ok()) return catalog.status().WithContext("image catalog");
  auto images = imager::ImageStore::Open(s->data_dir_->Sub("images"), std::move(*catalog));
  if (!images.ok()) return images.status().WithContext("image store");
  s->images_ = std::move(*images);
  classes::SpaceServiceOptions space_opts;
  space_opts.dir = options.space_dir;
  space_opts.poll = std::chrono::milliseconds(options.space_poll_ms);
  s->plans_ = std::make_unique<PlanService>(space_opts, &s->metrics_);
  s->plans_->Start();
  PlanService* plans = s->plans_.get();
  s->AddStatusSection("classes", [plans] { return plans->StatusJson(); });
  KILN_RETURN_IF_ERROR(s->PrepareBoot());
  KILN_RETURN_IF_ERROR(s->StartAgents());
  s->RegisterRoutes();

  http::HttpServerOptions hopts;
  hopts.listen = options.listen;
  hopts.threads = s->options_.http_threads;
  Server* raw = s.get();
  hopts.on_response = [raw](const http::Router::Route* route, const http::HttpRequest& req,
                            int status,
                            double seconds) { raw->CountResponse(route, req, status, seconds); };
  KILN_ASSIGN_OR_RETURN(s->http_, http::HttpServer::Start(hopts, s->router_.get()));
  http::HttpServer* http_server = s->http_.get();
  s->metrics_.Gauge("kiln_http_pending_requests",
                    "requests whose handler has not answered yet (waiting for an fsync, say)", {},
                    [http_server] { return static_cast<double>(http_server->load().pending); });
  s->metrics_.Gauge("kiln_http_open_streams", "streamed responses open (watch streams, images)", {},
                    [http_server] { return static_cast<double>(http_server->load().streams); });

  const auto& addr = s->http_->address();
  std::string host = addr.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  s->url_ = host.find(':') != std::string::npos ? fmt::format("http://[{}]:{}", host, addr.port)
                                                : fmt::format("http://{}:{}", host, addr.port);
  KILN_RETURN_IF_ERROR(s->StartBootNetwork());
  Json info = {{"url", s->url_}, {"pid", ::getpid()}, {"listen", addr.ToString()}};
  KILN_RETURN_IF_ERROR(s->RegisterPresence());
  // Log before serve.json appears: whoever waits for the file (tests, the
  // CLI) may read the log right after.
  log::Info("serve", "listening",
            {{"addr", addr.ToString()},
             {"url", s->url_},
             {"data", s->data_dir_->path()},
             {"threads", s->options_.http_threads}});
  KILN_RETURN_IF_ERROR(
      WriteFileAtomic(s->data_dir_->Sub(kServeInfoFile), info.dump() + "\n", 0644));

  return s;
}

Server::~Server() {
  Stop();
  images_api_.reset();  // joins its workers before the store goes
}

void Server::Stop() {
  if (stopped_ || !http_) return;  // never started: nothing to report
  stopped_ = true;
  if (boot_) boot_->Stop();
  http_->Stop();
  presence_.reset();  // closes the server's session: /kiln/servers/<id> vanishes
  if (plans_) plans_->Stop();
  ::unlink(data_dir_->Sub(kServeInfoFile).c_str());
  log::Info("serve", "stopped");
}

void Server::AddStatusSection(const std::string& name, std::function<Json()> fn) {
  std::lock_guard lock(status_mu_);
  status_sections_[name] = std::move(fn);
}

Json Server::StatusJson() const {
  auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  Json j = {
      {"version", kVersion},
      {"api", kApiVersion},
      {"pid", ::getpid()},
      {"uptime_s", uptime},
      {"started_at",
       std::chrono::duration_cast<std::chrono::seconds>(started_wall_.time_since_epoch()).count()},
      {"data_dir", data_dir_->path()},
      {"url", url_},
      {"http",
       {{"listen", http_ ? http_->address().ToString() : ""},
        {"threads", options_.http_threads},
        {"state", "running"}}},
  };
  std::lock_guard lock(status_mu_);
  for (const auto& [name, fn] : status_sections_) j[name] = fn();
  return j;
}

void Server::CountResponse(const http::Router::Route* route, const http::HttpRequest& req,
                           int status, double /*seconds*/) {
  std::atomic<uint64_t>* counter;
  {
    std::lock_guard lock(response_counters_mu_);
    auto& slot = response_counters_[{route, req.method, status}];
    if (!slot) {
      std::string name = route ? route->options.name : "unmatched";
      slot = &metrics_.Counter(
          "kiln_http_requests_total", "HTTP requests answered, by route and status",
          {{"route", name}, {"method", req.method}, {"code", std::to_string(status)}});
    }
    counter = slot;
  }
  counter->fetch_add(1, std::memory_order_relaxed);
}

void Server::RegisterRoutes() {
  RegisterMetaRoutes(*router_, *this);
  RegisterCoordRoutes(*router_, *this);
  RegisterPlanRoutes(*router_, *plans_);
  RegisterBootRoutes(*router_, *boot_);
  RegisterNodeRoutes(*router_, *this);
  RegisterAgentRoutes(*router_, *this);
  RegisterJobRoutes(*router_, *this);
  RegisterPxeRoutes(*router_, *this);
  images_api_ = RegisterImageRoutes(*router_, *this, *images_);
}

}  // namespace kiln
