#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/file_util.h"

namespace kiln::test {
namespace {

std::string TempFile(const char* tag) {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln-" + tag + "-XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd >= 0) close(fd);
  return tmpl;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<Process> Process::Start(const std::vector<std::string>& argv, ProcessOptions opts) {
  Process p;
  if (opts.stdout_path.empty()) {
    opts.stdout_path = TempFile("out");
    opts.stderr_path = TempFile("err");
    p.owns_files_ = true;
  }
  p.out_path_ = opts.stdout_path;
  p.err_path_ = opts.stderr_path.empty() ? opts.stdout_path : opts.stderr_path;

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    int out = open(p.out_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = open(p.err_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    setpgid(0, 0);
    if (!opts.cwd.empty() && chdir(opts.cwd.c_str()) != 0) _exit(126);
    for (const auto& e : opts.env) putenv(const_cast<char*>(e.c_str()));
    execvp(args[0], args.data());
    _exit(127);
  }
  p.pid_ = pid;
  return p;
}

Process::Process(Process&& o) noexcept { *this = std::move(o); }

Process& Process::operator=(Process&& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(exit_code_, o.exit_code_);
  std::swap(out_path_, o.out_path_);
  std::swap(err_path_, o.err_path_);
  std::swap(owns_files_, o.owns_files_);
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && Running()) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  if (owns_files_) {
    unlink(out_path_.c_str());
    unlink(err_path_.c_str());
  }
}

bool Process::Running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeStatus(status);
    return false;
  }
  return r == 0;
}

void Process::Signal(int sig) {
  if (pid_ > 0 && exit_code_ < 0) kill(pid_, sig);
}

int Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exit_code_;
}

std::string Process::Stdout() const { return ReadFile(out_path_).value_or(""); }
std::string Process::Stderr() const { return ReadFile(err_path_).value_or(""); }

RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              std::chrono::milliseconds timeout) {
  RunResult r;
  ProcessOptions opts;
  opts.env = env;
  auto p = Process::Start(argv, opts);
  if (!p.ok()) {
    r.err = p.status().ToString();
    return r;
  }
  r.exit_code = p->Wait(timeout);
  if (r.exit_code < 0) {
    p->Signal(SIGKILL);
    p->Wait();
    r.err = "timed out\n";
  }
  r.out = p->Stdout();
  r.err += p->Stderr();
  return r;
}

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace kiln::test
