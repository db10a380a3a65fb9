#include "pxe/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace kiln::pxe {
namespace {

using Clock = std::chrono::steady_clock;

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return "ended";
}

}  // namespace

Result<std::unique_ptr<Supervisor>> Supervisor::Start(SupervisorOptions options) {
  if (options.argv.empty()) return InvalidArgument("supervisor: empty command");
  std::unique_ptr<Supervisor> s(new Supervisor(std::move(options)));
  s->stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_fd_.valid()) return ErrnoError("eventfd", errno);
  Supervisor* raw = s.get();
  s->thread_ = std::thread([raw] { raw->Loop(); });
  return s;
}

Supervisor::~Supervisor() { Stop(); }

void Supervisor::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

pid_t Supervisor::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

uint64_t Supervisor::starts() const {
  std::lock_guard lock(mu_);
  return starts_;
}

Json Supervisor::Describe() const {
  std::lock_guard lock(mu_);
  Json j = {{"state", state_}, {"starts", starts_}};
  if (pid_ > 0) j["pid"] = pid_;
  if (!last_exit_.empty()) j["last_exit"] = last_exit_;
  auto now = Clock::now();
  if (state_ == "running") j["uptime_s"] = std::chrono::duration<double>(now - since_).count();
  if (state_ == "backoff")
    j["restart_in_s"] = std::max(0.0, std::chrono::duration<double>(restart_at_ - now).count());
  return j;
}

bool Supervisor::WaitBackoff(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  restart_at_ = Clock::now() + d;
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void Supervisor::Loop() {
  auto backoff = opts_.initial_backoff;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      state_ = "starting";
    }
    auto started = Clock::now();
    std::string how = RunOnce();
    bool stopping;
    {
      std::lock_guard lock(mu_);
      pid_ = -1;
      last_exit_ = how;
      stopping = stopping_;
      state_ = stopping ? "stopped" : "backoff";
      since_ = Clock::now();
    }
    if (stopping) break;
    if (Clock::now() - started >= opts_.healthy_after) backoff = opts_.initial_backoff;
    log::Warn(opts_.name, "exited; restarting",
              {{"how", how}, {"restart_in_ms", backoff.count()}});
    if (!WaitBackoff(backoff)) break;
    backoff = std::min(backoff * 2, opts_.max_backoff);
  }
  std::lock_guard lock(mu_);
  state_ = "stopped";
}

std::string Supervisor::RunOnce() {
  int out[2], exec_err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fmt::format("cannot start: pipe: {}", std::strerror(errno));
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(exec_err, O_CLOEXEC) != 0)
    return fmt::format("cannot start: pipe: {}", std::strerror(errno));
  UniqueFd err_r(exec_err[0]), err_w(exec_err[1]);

  std::vector<char*> args;
  for (const auto& a : opts_.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fmt::format("cannot start: fork: {}", std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_w.get(), 1);
    ::dup2(out_w.get(), 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(err_w.get(), &e, sizeof e);
    ::_exit(127);
  }
  out_w.Reset();
  err_w.Reset();
  // Non-blocking: a grandchild that keeps the pipe open must not hang us.
  ::fcntl(out_r.get(), F_SETFL, ::fcntl(out_r.get(), F_GETFL) | O_NONBLOCK);
  int exec_errno = 0;
  if (::read(err_r.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    int status;
    ::waitpid(pid, &status, 0);
    std::string how = fmt::format("cannot start {}: {}", opts_.argv[0], std::strerror(exec_errno));
    log::Error(opts_.name, "cannot start", {{"error", how}});
    return how;
  }
  {
    std::lock_guard lock(mu_);
    pid_ = pid;
    ++starts_;
    state_ = "running";
    since_ = Clock::now();
  }
  log::Info(opts_.name, "started", {{"pid", pid}, {"argv0", opts_.argv[0]}});
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  std::string partial;
  auto flush_lines = [&](bool all) {
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1)
      if (opts_.on_line) opts_.on_line(std::string_view(partial).substr(start, nl - start));
    partial.erase(0, start);
    if (all || partial.size() > 8192) {
      if (!partial.empty() && opts_.on_line) opts_.on_line(partial);
      partial.clear();
    }
  };
  bool out_open = true, exited = false, term_sent = false;
  Clock::time_point kill_at{};
  int status = 0;
  while (!exited) {
    pollfd fds[3] = {{out_r.get(), static_cast<short>(out_open ? POLLIN : 0), 0},
                     {stop_fd_.get(), POLLIN, 0},
                     {pidfd.get(), POLLIN, 0}};
    int timeout = term_sent ? 50 : (pidfd.valid() ? -1 : 200);
    int n = ::poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) break;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      char buf[4096];
      ssize_t r = ::read(out_r.get(), buf, sizeof buf);
      if (r > 0) {
        partial.append(buf, static_cast<size_t>(r));
        flush_lines(false);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        out_open = false;
      }
    }
    if ((fds[1].revents & POLLIN) && !term_sent) {
      ::kill(pid, SIGTERM);
      term_sent = true;
      kill_at = Clock::now() + opts_.stop_grace;
    }
    if (term_sent && Clock::now() >= kill_at) ::kill(-pid, SIGKILL);
    // Reap: on pidfd readiness, or by polling when pidfd is unavailable.
    if (::waitpid(pid, &status, WNOHANG) == pid) exited = true;
  }
  // Whatever is still in the pipe belongs to this run's log.
  for (;;) {
    char buf[4096];
    ssize_t r = out_open ? ::read(out_r.get(), buf, sizeof buf) : 0;
    if (r <= 0) break;
    partial.append(buf, static_cast<size_t>(r));
  }
  flush_lines(true);
  return DescribeWait(status);
}

}  // namespace kiln::pxe
