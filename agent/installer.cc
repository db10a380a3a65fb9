#include "agent/installer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/agent_api.h"
#include "agent/agent_config.h"
#include "agent/agent_unit.h"
#include "agent/bootloader.h"
#include "agent/disk_plan.h"
#include "agent/disk_setup.h"
#include "agent/kexec.h"
#include "agent/live_session.h"
#include "agent/plan_scripts.h"
#include "agent/progress_reporter.h"
#include "agent/retry.h"
#include "agent/run_reporter.h"
#include "agent/target_files.h"
#include "common/file_util.h"
#include "common/log.h"
#include "imager/image_client.h"

namespace kiln::agent {
namespace {

// The install log: every event and every line a tool or script printed.
class InstallLog {
 public:
  explicit InstallLog(const std::string& path) : path_(path) {
    fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  }
  void Write(std::string_view text) {
    std::lock_guard lock(mu_);
    if (fd_.valid()) (void)WriteAll(fd_.get(), text, path_);
  }
  std::string Read() const { return ReadFile(path_).value_or(""); }

 private:
  std::string path_;
  std::mutex mu_;
  UniqueFd fd_;
};

std::string EventLine(const ProgressEvent& e) {
  switch (e.kind) {
    case ProgressEvent::Kind::kPhase: return fmt::format("== {}: {}\n", e.phase, e.message);
    case ProgressEvent::Kind::kProgress:
      return fmt::format("   {} {}/{}\n", e.step, e.done, e.total);
    case ProgressEvent::Kind::kLog:
      return fmt::format("{}{}\n", e.level == "info" ? "" : e.level + ": ", e.message);
    case ProgressEvent::Kind::kResult:
      return fmt::format("== result: {}: {}\n", e.ok ? "ok" : "failed", e.message);
  }
  return "";
}

class Install {
 public:
  Install(const InstallOptions& o, std::string run, ProgressReporter* r, InstallLog* log)
      : o_(o), run_(std::move(run)), r_(r), log_(log), api_(o.server, o.node_token) {}

  Status Run(std::string* image_out) {
    ScriptContext sc;
    sc.target = o_.target;
    sc.log_path = o_.log_path;
    sc.work_dir = o_.work_dir;
    sc.on_output = [this](std::string_view s) { log_->Write(s); };
    sc.on_start = [this](const std::string& name, const std::string& source) {
      r_->Log("info", fmt::format("running {} ({})", name, source));
    };
    scripts_ = std::make_unique<PlanScripts>(o_.runner, sc);

    r_->Phase("plan", "reporting facts and fetching the plan");
    if (o_.facts.is_object())
      KILN_RETURN_IF_ERROR(
          Retry([&] { return api_.PutFacts(o_.node, o_.facts); }).WithContext("sending facts"));
    KILN_ASSIGN_OR_RETURN(plan_, Retry([&] { return api_.Plan(o_.node); }));
    std::string classes;
    for (const Json& c : plan_.value("classes", Json::array()))
      classes += " " + c.get<std::string>();
    r_->Log("info", "classes:" + classes);
    const Json image = plan_.value("image", Json::object());
    std::string image_name = image.value("name", "");
    std::string image_version = image.value("version", "");
    if (image_name.empty())
      return FailedPrecondition(
          "the plan names no image: set IMAGE in a class's vars (docs/CLASSES.md)");

    DiskPlan disks;
    std::unique_ptr<DiskSetup> setup;
    if (o_.disks) {
      KILN_ASSIGN_OR_RETURN(reboot_, RebootModeFrom(plan_.value("variables", Json::object())));
      KILN_ASSIGN_OR_RETURN(disks, DiskPlanFromJson(plan_));
      if (disks.disks.empty())
        return FailedPrecondition("the plan has no disk layout: nothing to install onto");
      DiskSetupOptions dso;
      dso.target = o_.target;
      dso.device_size = BlockDeviceSize;
      dso.on_step = [this](const std::string& step, int done, int total) {
        r_->Progress(step, static_cast<uint64_t>(done), static_cast<uint64_t>(total));
        r_->Log("info", step);
      };
      setup = std::make_unique<DiskSetup>(o_.runner, dso);
      if (Status st = Phase("partition", "checking sizes and partitioning",
                            [&] {
                              KILN_RETURN_IF_ERROR(setup->CheckSizes(disks));
                              return setup->Partition(disks);
                            });
          !st.ok())
        return st;
      if (Status st = Phase("format", "making filesystems", [&] { return setup->Format(disks); });
          !st.ok())
        return st;
      if (Status st =
              Phase("mount", "mounting under " + o_.target, [&] { return setup->Mount(disks); });
          !st.ok())
        return st;
      mounted_ = true;
    } else {
      KILN_RETURN_IF_ERROR(MakeDirs(o_.target, 0755));
    }
    Status s = AfterMount(disks, setup.get(), image_name, image_version, image_out);
    if (mounted_) {
      Status u = setup->Unmount(disks);
      if (s.ok()) s = u;
    }
    return s;
  }

 private:
  // Calls to the server outlive a server restart of up to two minutes.
  template <typename F>
  auto Retry(F f) -> decltype(f()) {
    return RetryWhileUnavailable(f, std::chrono::minutes(2), [this](const Status& s) {
      r_->Log("warn", s.message() + "; retrying until the server is back");
    });
  }

  Status Phase(const std::string& phase, const std::string& message,
               const std::function<Status()>& body) {
    KILN_RETURN_IF_ERROR(scripts_->RunHooks(plan_, phase));
    r_->Phase(phase, message);
    return body();
  }

  Status AfterMount(const DiskPlan& disks, DiskSetup* setup, const std::string& name,
                    const std::string& version, std::string* image_out) {
    if (Status st = Phase(
            "image", fmt::format("deploying {}@{}", name, version),
            [&]() -> Status {
              imager::DeployOptions d;
              d.image = name;
              d.version = version;
              d.apply.set_owner = ::geteuid() == 0;
              d.apply.sync = true;
              // A server restart must not fail an install: keep resuming for about
              // a minute and a half (the client backs off 200 ms more each time).
              d.max_resumes = 30;
              d.progress = [this](const imager::DeployProgress& p) {
                r_->Progress("stream", p.stream_bytes, p.stream_total);
              };
              // An object that fails verification is refused (nothing of it is
              // applied); the stream is fetched again, twice at most, before the
              // install gives up naming it.
              auto rep =
                  Retry([&] { return imager::DeployFromServer(&api_.http(), o_.target, d); });
              for (int attempt = 1;
                   !rep.ok() && rep.status().code() == Code::kCorruption && attempt <= 2;
                   ++attempt) {
                r_->Log("warn", rep.status().message() + "; fetching the image again");
                rep = Retry([&] { return imager::DeployFromServer(&api_.http(), o_.target, d); });
              }
              if (!rep.ok()) return rep.status().WithContext("deploying " + name + "@" + version);
              r_->Progress("stream", rep->stream_bytes, rep->stream_bytes);
              *image_out = fmt::format("{}@{}", name, rep->version.value("version", 0));
              r_->Log("info", fmt::format("deployed {}: {} entries, {} bytes received, {} resumes",
                                          *image_out, rep->apply.entries, rep->received_bytes,
                                          rep->resumes));
              return Status::Ok();
            });
        !st.ok())
      return st;
    if (Status st = Phase("files", "installing class files",
                          [&]() -> Status {
                            if (setup) {
                              KILN_ASSIGN_OR_RETURN(std::string fstab, setup->Fstab(disks));
                              Json f = Json::array({Json{{"path", "/etc/fstab"},
                                                         {"content", fstab},
                                                         {"mode", "0644"},
                                                         {"source", "disk layout"}}});
                              KILN_RETURN_IF_ERROR(InstallFiles(o_.target, f).status());
                              r_->Log("info", "wrote /etc/fstab");
                            }
                            auto done = InstallFiles(
                                o_.target, plan_.value("files", Json::array()),
                                [this](const std::string& line) { r_->Log("info", line); });
                            if (!done.ok()) return done.status();
                            r_->Progress("files", done->files, done->files);
                            return Status::Ok();
                          });
        !st.ok())
      return st;
    if (Status st = Phase("scripts", "running class scripts in the target",
                          [&]() -> Status {
                            KILN_RETURN_IF_ERROR(scripts_->RunScripts(plan_));
                            size_t n = plan_.value("scripts", Json::array()).size();
                            r_->Progress("scripts", n, n);
                            return Status::Ok();
                          });
        !st.ok())
      return st;
    if (o_.disks) {
      BootloaderOptions b;
      b.target = o_.target;
      if (!o_.grub_efi_image.empty()) b.grub_efi_image = o_.grub_efi_image;
      b.scratch_dir = o_.work_dir + "/kiln-esp";
      b.firmware =
          o_.facts.is_object() ? o_.facts.value("/firmware/type"_json_pointer, "bios") : "bios";
      if (Status st = Phase("bootloader", BootloaderDescription(b.firmware),
                            [&]() -> Status {
                              return InstallBootloader(o_.runner, disks,
                                                       plan_.value("variables", Json::object()), b,
                                                       &boot_entry_);
                            });
          !st.ok())
        return st;
    }
    // The installed system's agent finds its server and node here.
    AgentConfig ac;
    ac.server = o_.server;
    ac.node = o_.node;
    ac.token = o_.node_token;
    ac.image = *image_out;
    ac.run = run_;
    ac.installed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    Json conf = Json::array({Json{{"path", kAgentConfigPath},
                                  {"content", ac.ToJson().dump(2) + "\n"},
                                  {"mode", "0600"},
                                  {"source", "kiln-agent"}}});
    KILN_RETURN_IF_ERROR(InstallFiles(o_.target, conf).status());
    KILN_RETURN_IF_ERROR(
        InstallAgentUnit(o_.target, [this](const std::string& m) { r_->Log("info", m); }));
    KILN_RETURN_IF_ERROR(scripts_->RunHooks(plan_, "finish"));
    // Loaded last, once /boot is final, and while the target is mounted.
    if (o_.disks && reboot_ == RebootMode::kKexec) {
      Status k = KexecLoad(boot_entry_);
      kexec_loaded_ = k.ok();
      if (k.ok())
        r_->Log("info", fmt::format("loaded {} for kexec: the installed system starts without a "
                                    "firmware reboot",
                                    boot_entry_.kernel.substr(o_.target.size())));
      else
        r_->Log("warn", k.message() + "; the machine reboots through its firmware instead");
    }
    return Status::Ok();
  }

 public:
  bool kexec_loaded() const { return kexec_loaded_; }

 private:
  const InstallOptions& o_;
  std::string run_;
  ProgressReporter* r_;
  InstallLog* log_;
  AgentApi api_;
  Json plan_;
  std::unique_ptr<PlanScripts> scripts_;
  bool mounted_ = false;
  RebootMode reboot_ = RebootMode::kFirmware;
  BootEntry boot_entry_;
  bool kexec_loaded_ = false;
};

}  // namespace

Result<InstallReport> RunInstall(const InstallOptions& opts) {
  if (!opts.runner) return InvalidArgument("no command runner");
  InstallReport report;
  report.run = NewRunId();
  InstallLog log(opts.log_path);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ProgressReporter> reporter_owner,
                        StartRunReporter({.server = opts.server,
                                          .token = opts.node_token,
                                          .node = opts.node,
                                          .run = report.run,
                                          .state_dir = opts.state_dir,
                                          .on_event = [&log, &opts](const ProgressEvent& e) {
                                            log.Write(EventLine(e));
                                            if (opts.on_event) opts.on_event(e);
                                          }}));
  ProgressReporter& reporter = *reporter_owner;
  LiveSession session(opts.server, opts.node_token, opts.node, opts.session_timeout,
                      Json{{"mode", "install"}, {"run", report.run}});

  reporter.Log("info", fmt::format("kiln-agent {} on node {}, run {}, target {}",
                                   opts.disks ? "install" : "dirinstall", opts.node, report.run,
                                   opts.target));
  Install install(opts, report.run, &reporter, &log);
  Status s = install.Run(&report.image);
  report.kexec_loaded = s.ok() && install.kexec_loaded();

  AgentApi api(opts.server, opts.node_token);
  if (s.ok()) {
    reporter.Phase("finish", "saving the install log and reporting success");
  } else {
    reporter.Log("error", s.message());
    reporter.Result(false, s.message());
  }
  auto budget = std::chrono::minutes(2);
  Status saved =
      RetryWhileUnavailable([&] { return api.PutLog(opts.node, report.run, log.Read()); }, budget);
  if (!saved.ok()) reporter.Log("warn", "the install log was not saved: " + saved.message());
  if (s.ok()) {
    // The story reaches the server before the verdict, so no late event
    // can follow "installed".
    s = reporter.Flush(std::chrono::minutes(2)).WithContext("sending progress events");
    if (s.ok())
      s = RetryWhileUnavailable([&] { return api.Installed(opts.node, report.image); }, budget);
    if (s.ok())
      reporter.Result(true, "installed " + report.image);
    else
      reporter.Result(false, "reporting the install: " + s.message());
  }
  // Every event must reach the server before the machine reboots.
  Status flushed = reporter.Flush(std::chrono::minutes(5));
  report.events = reporter.acked();
  if (!s.ok()) return s;
  if (!flushed.ok()) return flushed.WithContext("sending the last progress events");
  return report;
}

}  // namespace kiln::agent
