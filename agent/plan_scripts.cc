#include "agent/plan_scripts.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "imager/tree_ops.h"

namespace kiln::agent {
namespace {

constexpr const char* kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Where scripts are put inside the target while they run.
constexpr const char* kScriptDir = "tmp/.kiln-scripts";

bool IsEnvName(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string EnvValue(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const Json& e : v) {
      if (e.is_object() || e.is_array()) return v.dump();
      if (!out.empty()) out += ' ';
      out += e.is_string() ? e.get<std::string>() : e.dump();
    }
    return out;
  }
  return v.dump();
}

std::string Content(const Json& item) {
  std::string c = item.value("content", "");
  if (item.value("encoding", "utf-8") == "base64") {
    auto d = Base64Decode(c);
    return d.ok() ? *d : std::string();
  }
  return c;
}

std::string LastLine(const std::string& out) {
  std::string_view v = Trim(out);
  size_t nl = v.rfind('\n');
  return std::string(nl == std::string_view::npos ? v : v.substr(nl + 1));
}

// Mounts /proc, /sys and /dev into the target for the scripts, and takes
// them away again in the destructor, innermost first.
class KernelMounts {
 public:
  KernelMounts(CommandRunner* runner, const std::string& target) : runner_(runner) {
    if (target == "/" || target.empty()) return;
    struct Want {
      const char* dir;
      std::vector<std::string> args;
    };
    const Want wants[] = {{"proc", {"-t", "proc", "proc"}},
                          {"sys", {"-t", "sysfs", "sysfs"}},
                          {"dev", {"--bind", "/dev"}}};
    for (const Want& w : wants) {
      std::string dir = target + "/" + w.dir;
      struct stat st {};
      if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      std::vector<std::string> argv = {"mount"};
      argv.insert(argv.end(), w.args.begin(), w.args.end());
      argv.push_back(dir);
      if (runner_->Check(argv).ok()) mounted_.push_back(dir);
    }
  }
  ~KernelMounts() {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it)
      if (!runner_->Check({"umount", *it}).ok()) (void)runner_->Check({"umount", "-l", *it});
  }

 private:
  CommandRunner* runner_;
  std::vector<std::string> mounted_;
};

}  // namespace

std::vector<std::string> PlanEnvironment(const Json& plan, const ScriptContext& ctx,
                                         const std::string& phase) {
  std::vector<std::string> env = {kPath};
  if (plan.contains("variables") && plan["variables"].is_object())
    for (const auto& [k, v] : plan["variables"].items())
      if (IsEnvName(k) && !StartsWith(k, "KILN_")) env.push_back(k + "=" + EnvValue(v));
  const Json node = plan.value("node", Json::object());
  std::string classes;
  for (const Json& c : plan.value("classes", Json::array()))
    if (c.is_string()) classes += (classes.empty() ? "" : " ") + c.get<std::string>();
  env.push_back("KILN_NODE=" + node.value("id", ""));
  env.push_back("KILN_HOSTNAME=" + node.value("hostname", ""));
  env.push_back("KILN_CLASSES=" + classes);
  env.push_back("KILN_PHASE=" + phase);
  env.push_back("KILN_TARGET=" + ctx.target);
  env.push_back("target=" + ctx.target);
  env.push_back("KILN_LOG=" + ctx.log_path);
  return env;
}

Status PlanScripts::RunHooks(const Json& plan, const std::string& phase) {
  for (const Json& h : plan.value("hooks", Json::array())) {
    if (!h.is_object() || h.value("phase", "") != phase) continue;
    KILN_RETURN_IF_ERROR(RunOne(plan, h, phase, false));
  }
  return Status::Ok();
}

Status PlanScripts::RunScripts(const Json& plan) {
  const Json scripts = plan.value("scripts", Json::array());
  if (scripts.empty()) return Status::Ok();
  bool chroot = !(ctx_.target.empty() || ctx_.target == "/");
  if (chroot) {
    struct stat st {};
    std::string sh = ctx_.target + "/bin/sh";
    if (::stat(sh.c_str(), &st) != 0)
      return FailedPrecondition(fmt::format(
          "the plan has {} scripts, which run inside the target, but the target has no /bin/sh "
          "(is the image a whole system?)",
          scripts.size()));
  }
  KernelMounts mounts(runner_, ctx_.target);
  for (const Json& s : scripts) KILN_RETURN_IF_ERROR(RunOne(plan, s, "scripts", chroot));
  return Status::Ok();
}

Status PlanScripts::RunOne(const Json& plan, const Json& item, const std::string& phase,
                           bool in_target) {
  std::string source = item.value("source", "?");
  std::string name = item.value("name", "");
  if (name.empty()) name = source.substr(source.rfind('/') + 1);
  if (ctx_.on_start) ctx_.on_start(name, source);
  std::string content = Content(item);
  if (!StartsWith(content, "#!")) content = "#!/bin/sh\n" + content;

  // Write the script where it will run: inside the target (confined, so a
  // symlink in the image cannot redirect it) or in the work directory.
  std::string host_path, run_path;
  if (in_target) {
    KILN_ASSIGN_OR_RETURN(imager::Tree tree, imager::Tree::Open(ctx_.target, false));
    auto tmp = tree.Dir("tmp");
    if (!tmp.ok() && tmp.status().code() == Code::kNotFound) {
      auto root = tree.Dir("");
      if (root.ok()) ::mkdirat(*root, "tmp", 01777);
      tmp = tree.Dir("tmp");
    }
    if (!tmp.ok()) return tmp.status().WithContext("the target's /tmp");
    ::mkdirat(*tmp, ".kiln-scripts", 0700);
    KILN_ASSIGN_OR_RETURN(int dir, tree.Dir(kScriptDir));
    std::string file = fmt::format("{}-{}", ran_, name);
    UniqueFd fd(
        ::openat(dir, file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0700));
    if (!fd.valid()) return ErrnoError("writing script " + source + " into the target", errno);
    KILN_RETURN_IF_ERROR(WriteAll(fd.get(), content, source));
    run_path = fmt::format("/{}/{}", kScriptDir, file);
    host_path = ctx_.target + run_path;
  } else {
    host_path = fmt::format("{}/kiln-hook-{}-{}", ctx_.work_dir, ::getpid(), ran_);
    KILN_RETURN_IF_ERROR(WriteFileAtomic(host_path, content, 0700));
    run_path = host_path;
  }

  std::vector<std::string> argv;
  if (in_target)
    argv = {"chroot", ctx_.target, run_path};
  else
    argv = {run_path};
  SubprocessOptions opts;
  opts.env = PlanEnvironment(plan, ctx_, phase);
  opts.merge_stderr = true;
  opts.on_output = ctx_.on_output;
  opts.cwd = in_target ? "/" : ctx_.work_dir;
  auto r = runner_->Run(argv, opts);
  ::unlink(host_path.c_str());
  ++ran_;
  std::string what = fmt::format("{} {} ({})", in_target ? "script" : "hook", name, source);
  if (!r.ok()) return r.status().WithContext(what);
  if (r->exit_code != 0) {
    std::string last = LastLine(r->out);
    return Status(Code::kFailedPrecondition, fmt::format("{} exited with {}{}", what, r->exit_code,
                                                         last.empty() ? "" : ": " + last));
  }
  return Status::Ok();
}

}  // namespace kiln::agent
