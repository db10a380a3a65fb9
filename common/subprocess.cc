#include "common/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln {
namespace {

int DecodeWait(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& opts) {
  if (argv.empty()) return InvalidArgument("empty command");
  int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // Reports an exec failure's errno back to the parent.
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd exec_r(exec_pipe[0]), exec_w(exec_pipe[1]);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child's environment is made here, before the fork: between fork
  // and exec the child of a threaded process must not allocate (another
  // thread may have held the allocator's lock at the fork, and under ASan
  // such a child spun forever; putenv there allocated).
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const auto& add : opts.env) {
    // "K=V" sets K; a bare "K" removes it (putenv's rules).
    size_t eq = add.find('=');
    std::string key = eq == std::string::npos ? add + "=" : add.substr(0, eq + 1);
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(key); });
    if (eq != std::string::npos) env.push_back(add);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(opts.merge_stderr ? out_w.get() : err_w.get(), 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_w.get(), &e, sizeof e);
      ::_exit(127);
    }
    ::execvpe(args[0], args.data(), envp.data());
    int e = errno;
    (void)!::write(exec_w.get(), &e, sizeof e);
    ::_exit(127);
  }
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  exec_w.Reset();

  int exec_errno = 0;
  if (::read(exec_r.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    int status;
    ::waitpid(pid, &status, 0);
    return ErrnoError(fmt::format("run {}", argv[0]), exec_errno);
  }

  SubprocessResult r;
  std::string_view pending_in = opts.stdin_data;
  if (pending_in.empty()) in_w.Reset();
  auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  while (out_r.valid() || err_r.valid()) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_r.valid()) {
      out_i = n;
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_i = n;
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    if (in_w.valid()) {
      in_i = n;
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    int wait_ms = -1;
    if (opts.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(-pid, SIGKILL);
        r.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int rc = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      char buf[65536];
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) return;
        fd.Reset();
        return;
      }
      sink.append(buf, static_cast<size_t>(got));
      if (opts.on_output) opts.on_output(std::string_view(buf, static_cast<size_t>(got)));
    };
    drain(out_i, out_r, r.out);
    drain(err_i, err_r, r.err);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), pending_in.data(), pending_in.size());
      if (w > 0) pending_in.remove_prefix(static_cast<size_t>(w));
      if (w < 0 && errno != EAGAIN && errno != EINTR) pending_in = {};
      if (pending_in.empty()) in_w.Reset();
    }
  }
  in_w.Reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = DecodeWait(status);
  return r;
}

std::string DescribeFailure(const std::vector<std::string>& argv, const SubprocessResult& r) {
  std::string name = argv.empty() ? "command" : argv[0];
  if (r.timed_out) return fmt::format("{} timed out and was killed", name);
  std::string_view text = Trim(r.err.empty() ? r.out : r.err);
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos) text = text.substr(nl + 1);
  if (text.empty()) return fmt::format("{} exited with {}", name, r.exit_code);
  return fmt::format("{} exited with {}: {}", name, r.exit_code, text);
}

}  // namespace kiln
