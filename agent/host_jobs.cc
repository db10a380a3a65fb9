#include "agent/host_jobs.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "agent/retry.h"
#include "agent/run_reporter.h"
#include "common/subprocess.h"
#include "imager/apply.h"
#include "imager/capture.h"
#include "imager/diff.h"
#include "imager/image_client.h"
#include "imager/scan.h"
#include "imager/stat_cache.h"

namespace kiln::agent {
namespace {

constexpr size_t kMaxOutput = 1u << 20;

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// "excludes 1.2, sync 4.0" from {"excludes":1.2,"sync":4.0}.
std::string FormatTimings(const Json& t) {
  std::string out;
  for (const auto& [k, v] : t.items())
    out += fmt::format("{}{} {:.1f}", out.empty() ? "" : ", ", k, v.get<double>());
  return out;
}

// "web@3" -> ("web", "3").
std::pair<std::string, std::string> SplitRef(const std::string& ref) {
  size_t at = ref.rfind('@');
  if (at == std::string::npos) return {ref, ""};
  return {ref.substr(0, at), ref.substr(at + 1)};
}

}  // namespace

std::string HostJobs::StateDir() const {
  return (opts_.root == "/" ? "" : opts_.root) + "/var/lib/kiln-agent";
}

std::string HostJobs::UndoDir() const {
  return (opts_.root == "/" ? "" : opts_.root) + "/" + imager::kDefaultUndoName;
}

Status HostJobs::SaveConfig() {
  KILN_RETURN_IF_ERROR(SaveAgentConfig(opts_.config_path, config_));
  if (opts_.on_image) opts_.on_image(config_);
  return Status::Ok();
}

Result<Json> HostJobs::Run(const Json& args) {
  std::string command = args.value("command", "");
  SubprocessOptions o;
  o.merge_stderr = true;
  o.timeout = std::chrono::seconds(args.value("timeout_s", 600));
  o.cwd = opts_.root;
  KILN_ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess({"/bin/sh", "-c", command}, o));
  std::string out = r.out.size() > kMaxOutput ? r.out.substr(r.out.size() - kMaxOutput) : r.out;
  std::string message =
      r.timed_out ? fmt::format("timed out after {} s and was killed", args.value("timeout_s", 600))
                  : fmt::format("exited with {}", r.exit_code);
  return Json{{"exit_code", r.exit_code},
              {"output", out},
              {"message", message},
              {"timed_out", r.timed_out}};
}

std::vector<std::string> HostJobs::UpdateKeeps(const Json& args, std::string* note) {
  // What makes a host itself, and what the agent keeps for itself.
  std::vector<std::string> keep = {"/etc/hostname",       "/etc/machine-id", "/etc/fstab",
                                   "/etc/ssh/ssh_host_*", "/var/log",        "/etc/kiln/agent.json",
                                   "/var/lib/kiln-agent"};
  for (const Json& e : args.value("excludes", Json::array()))
    if (e.is_string()) keep.push_back(e.get<std::string>());
  // The class variable UPDATE_EXCLUDE: a glob or a list of them.
  auto plan = api_->Plan(config_.node);
  if (!plan.ok()) {
    *note = "; the plan could not be read (" + plan.status().message() +
            "), so UPDATE_EXCLUDE was not applied";
    return keep;
  }
  const Json var = plan->value("variables", Json::object()).value("UPDATE_EXCLUDE", Json());
  if (var.is_string()) keep.push_back(var.get<std::string>());
  if (var.is_array())
    for (const Json& e : var)
      if (e.is_string()) keep.push_back(e.get<std::string>());
  return keep;
}

Result<Json> HostJobs::Update(const Json& args, ProgressReporter* r) {
  std::string image = args.value("image", "");
  std::string version =
      args["version"].is_string() ? args["version"].get<std::string>() : args["version"].dump();
  auto [cur_name, cur_version] = SplitRef(config_.image);
  std::string undo = UndoDir();
  std::error_code ec;
  std::filesystem::remove_all(undo, ec);  // one level of undo: the last update's

  imager::DeployOptions d;
  d.image = image;
  d.version = version;
  // The same image: only the delta travels. Another image: all of it.
  if (image == cur_name) d.from = cur_version;
  d.apply.undo_dir = undo;
  d.apply.set_owner = ::geteuid() == 0;
  d.apply.sync = true;
  std::string note;
  auto start = std::chrono::steady_clock::now();
  d.apply.keep = UpdateKeeps(args, &note);
  double keeps_ms = MsSince(start);
  d.max_resumes = 30;
  if (r) {
    r->Phase("update", fmt::format("{} -> {}@{}{}", config_.image, image, version,
                                   d.from.empty() ? " (full image)" : ""));
    std::string kept;
    for (const auto& k : d.apply.keep) kept += (kept.empty() ? "" : " ") + k;
    r->Log("info", "left alone: " + kept + note);
    d.progress = [r](const imager::DeployProgress& p) {
      r->Progress("stream", p.stream_bytes, p.stream_total);
    };
  }
  // Tests: break the transfer for good after this many bytes, as a server
  // that dies mid-update would.
  if (uint64_t cut = args.value("break_after_bytes", uint64_t(0)); cut > 0) {
    d.break_after = cut;
    d.max_resumes = 0;
  }
  // A server restart mid-update is ridden out (the stream resumes where it
  // broke); only what cannot be fixed by waiting undoes the update.
  auto rep =
      RetryWhileUnavailable([&] { return imager::DeployFromServer(&api_->http(), opts_.root, d); },
                            std::chrono::minutes(2));
  if (!rep.ok()) {
    // Whatever was applied goes back: the host stays on the version it ran.
    Status restored = imager::RestoreUndo(opts_.root, undo, ::geteuid() == 0);
    std::string how = restored.ok() ? "the host is back at " + config_.image
                                    : "restoring the snapshot failed too: " + restored.message();
    Status failed(rep.status().code(), fmt::format("updating to {}@{}: {}; {}", image, version,
                                                   rep.status().message(), how));
    if (r) {
      r->Log("error", failed.message());
      r->Result(false, failed.message());
    }
    return failed;
  }
  std::string now = fmt::format("{}@{}", image, rep->version.value("version", 0));
  config_.previous = config_.image;
  config_.image = now;
  start = std::chrono::steady_clock::now();
  KILN_RETURN_IF_ERROR(SaveConfig());
  double save_ms = MsSince(start);
  std::string message = fmt::format(
      "updated {} -> {} ({} entries, {} bytes received{}{}){}", config_.previous, now,
      rep->apply.entries, rep->received_bytes,
      rep->from ? fmt::format(", delta from {}", rep->from) : "",
      rep->apply.kept ? fmt::format(", {} kept as they were", rep->apply.kept) : "", note);
  if (r) {
    r->Progress("stream", rep->stream_bytes, rep->stream_bytes);
    r->Result(true, message);
  }
  return Json{{"message", message},
              {"exit_code", 0},
              {"image", now},
              {"timings_ms",
               {{"excludes", keeps_ms},
                {"resolve", rep->resolve_ms},
                {"apply", rep->stream_ms - rep->apply.sync_ms},
                {"sync", rep->apply.sync_ms},
                {"save", save_ms}}}};
}

Result<Json> HostJobs::Rollback() {
  std::string undo = UndoDir();
  struct stat st {};
  if (::stat(undo.c_str(), &st) != 0 || config_.previous.empty())
    return FailedPrecondition(
        fmt::format("nothing to roll back to: {} has no undo snapshot of an update", opts_.root));
  KILN_RETURN_IF_ERROR(imager::RestoreUndo(opts_.root, undo, ::geteuid() == 0));
  std::string was = config_.image;
  config_.image = config_.previous;
  config_.previous.clear();
  KILN_RETURN_IF_ERROR(SaveConfig());
  return Json{{"message", fmt::format("rolled back {} -> {}", was, config_.image)},
              {"exit_code", 0},
              {"image", config_.image}};
}

Result<Json> HostJobs::Diff() {
  auto [name, version] = SplitRef(config_.image);
  if (name.empty() || version.empty())
    return FailedPrecondition(
        "this host does not know which image it runs (agent.json has no image)");
  KILN_ASSIGN_OR_RETURN(
      HttpReply r,
      api_->http().Do("GET", fmt::format("/api/v1/images/{}/versions/{}/manifest", name, version)));
  if (r.status != 200)
    return StatusFromErrorJson(r.body, r.status)
        .WithContext("fetching the manifest of " + config_.image);
  KILN_ASSIGN_OR_RETURN(imager::Manifest image, imager::DecodeManifest(r.body));
  imager::ScanOptions so;
  so.excludes = {"/proc", "/sys", "/dev",
                 "/run",  "/tmp", std::string("/") + imager::kDefaultUndoName};
  so.one_file_system = true;
  KILN_ASSIGN_OR_RETURN(imager::ScanResult host, imager::ScanDirectory(opts_.root, so));
  auto changes = imager::DiffManifests(image, host.manifest);
  Json list = Json::array();
  std::string text;
  size_t shown = 0;
  for (const auto& c : changes) {
    // A directory whose only difference is its mtime changed because
    // something inside it did; that something is listed itself.
    if (c.kind == imager::Change::Kind::kChanged && c.what == std::vector<std::string>{"mtime"} &&
        c.b && c.b->type == imager::EntryType::kDir)
      continue;
    Json j = {{"path", "/" + c.path()},
              {"change", c.kind == imager::Change::Kind::kAdded     ? "added"
                         : c.kind == imager::Change::Kind::kRemoved ? "removed"
                                                                    : "changed"}};
    if (c.kind == imager::Change::Kind::kChanged) j["what"] = c.what;
    if (++shown <= 10000) list.push_back(j);
    std::string what;
    for (const auto& w : c.what) what += (what.empty() ? "" : ",") + w;
    text += fmt::format("{} /{}{}\n", j["change"].get<std::string>(), c.path(),
                        what.empty() ? "" : " (" + what + ")");
  }
  return Json{{"message", fmt::format("{} path(s) differ from {}", shown, config_.image)},
              {"exit_code", 0},
              {"output", text},
              {"result", {{"image", config_.image}, {"drifted", shown}, {"changes", list}}}};
}

Result<Json> HostJobs::Capture(const Json& args) {
  std::string image = args.value("image", "");
  imager::CaptureOptions co;
  // Never the kernel's filesystems, scratch space, the undo snapshot, the
  // agent's own state, or agent.json: it holds this node's token.
  co.excludes = {"/proc",
                 "/sys",
                 "/dev",
                 "/run",
                 "/tmp",
                 std::string("/") + imager::kDefaultUndoName,
                 "/var/lib/kiln-agent",
                 "/etc/kiln/agent.json"};
  for (const Json& e : args.value("excludes", Json::array()))
    if (e.is_string()) co.excludes.push_back(e.get<std::string>());
  co.one_file_system = !args.value("cross_filesystems", false);
  std::string state = StateDir();
  std::error_code ec;
  std::filesystem::create_directories(state, ec);
  // The stat cache is saved after the verdict has gone out (a cache that
  // is not saved costs only time next run).
  std::string cache_path = state + "/capture-" + image + ".statcache";
  std::shared_ptr<imager::StatCache>& cache = stat_caches_[image];
  if (!cache) cache = std::make_shared<imager::StatCache>(imager::StatCache::Load(cache_path));
  co.cache = cache.get();
  imager::HttpCaptureTarget target(&api_->http(), image, args.value("note", ""),
                                   "host:" + config_.node);
  auto captured = imager::CaptureDirectory(opts_.root, co, &target);
  if (!captured.ok()) {
    stat_caches_.erase(image);  // the file's copy, next time
    return captured.status();
  }
  const imager::CaptureReport& r = *captured;
  after_verdict_ = [cache, cache_path] { (void)cache->Save(cache_path); };
  std::string ref = fmt::format("{}@{}", image, r.version.version);
  return Json{
      {"message",
       fmt::format("captured {}: {} entries, {} of {} files read, sent {} of {} objects ({} bytes)",
                   ref, r.entries, r.files_hashed, r.files, r.objects_sent, r.objects,
                   r.bytes_sent)},
      {"exit_code", 0},
      {"result",
       {{"image", ref},
        {"entries", r.entries},
        {"objects", r.objects},
        {"objects_sent", r.objects_sent},
        {"bytes_sent", r.bytes_sent},
        {"one_exchange", r.one_exchange},
        {"streamed", r.streamed},
        {"files_hashed", r.files_hashed}}},
      {"timings_ms",
       {{"scan", r.scan_ms},
        {"offer", r.offer_ms},
        {"upload", r.upload_ms},
        {"commit", r.commit_ms}}}};
}

Result<Json> HostJobs::Queued(std::chrono::milliseconds wait, bool* waited) {
  return api_->Jobs(config_.node, "queued", wait, waited);
}

Result<int> HostJobs::RunQueued() {
  KILN_ASSIGN_OR_RETURN(Json jobs, Queued());
  int ran = 0;
  for (const Json& job : jobs) ran += RunJob(job) ? 1 : 0;
  return ran;
}

bool HostJobs::RunJob(const Json& job) {
  std::error_code ec;
  std::string id = job.value("id", "");
  std::string kind = job.value("kind", "");
  auto start = std::chrono::steady_clock::now();
  // Taking the job is a compare-and-set on the server: a job is run once.
  auto taken = api_->UpdateJob(config_.node, id, Json{{"state", "running"}});
  if (!taken.ok()) return false;
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  Json timings = {{"queued", now_ms - job.value("created_ms", now_ms)}, {"take", MsSince(start)}};
  start = std::chrono::steady_clock::now();
  const Json args = job.value("args", Json::object());
  // An update tells its story like an install: `kiln watch` follows it.
  std::unique_ptr<ProgressReporter> reporter;
  std::string run;
  if (kind == "update") {
    run = NewRunId("update");
    auto started = StartRunReporter({.server = config_.server,
                                     .token = config_.token,
                                     .node = config_.node,
                                     .run = run,
                                     .state_dir = StateDir(),
                                     .on_event = nullptr});
    if (started.ok()) reporter = std::move(*started);
  }
  Result<Json> r = kind == "run"        ? Run(args)
                   : kind == "update"   ? Update(args, reporter.get())
                   : kind == "rollback" ? Rollback()
                   : kind == "diff"     ? Diff()
                   : kind == "capture"  ? Capture(args)
                                        : Result<Json>(InvalidArgument("unknown job kind " + kind));
  timings["run"] = MsSince(start);
  start = std::chrono::steady_clock::now();
  Json report;
  if (r.ok()) {
    report = *r;
    if (report.contains("timings_ms")) {
      timings.update(report["timings_ms"]);
      report.erase("timings_ms");
    }
    report["state"] = kind == "run" && report.value("exit_code", 0) != 0 ? "failed" : "done";
  } else {
    report = {{"state", "failed"}, {"message", r.status().message()}};
  }
  if (reporter) {
    // The story reaches the server before the verdict.
    report["run"] = run;
    if (reporter->Flush(std::chrono::minutes(2)).ok())
      std::filesystem::remove_all(StateDir() + "/runs/" + run, ec);
    reporter.reset();
    timings["events"] = MsSince(start);
    start = std::chrono::steady_clock::now();
  }
  // The verdict must reach the server, or the job would stay "running".
  (void)RetryWhileUnavailable([&] { return api_->UpdateJob(config_.node, id, report).status(); },
                              std::chrono::minutes(5));
  timings["verdict"] = MsSince(start);
  if (after_verdict_) {
    after_verdict_();
    after_verdict_ = nullptr;
  }
  // Where a job's time went, for whoever wonders why it took so long.
  fmt::print(stderr, "kiln-agent daemon: job {} ({}) {}; ms: {}\n", id, kind,
             report.value("state", ""), FormatTimings(timings));
  return true;
}

}  // namespace kiln::agent
