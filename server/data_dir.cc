#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "common/api_client.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/strings.h"

namespace kiln {
namespace {

Status CheckWritable(const std::string& dir) {
  std::string probe = dir + "/.write-probe";
  UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid())
    return ErrnoError(fmt::format("data directory {} is not writable", dir), errno);
  fd.Reset();
  ::unlink(probe.c_str());
  return Status::Ok();
}

Result<std::string> LoadOrCreateToken(const std::string& path) {
  auto existing = ReadFile(path);
  if (existing.ok()) {
    std::string t(Trim(*existing));
    if (t.size() < 32) return Corruption(fmt::format("{}: token is too short", path));
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      log::Warn("serve", "admin token file is readable by others; chmod 600 it",
                {{"path", path}});
    return t;
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  std::string token = RandomHex(32);
  KILN_RETURN_IF_ERROR(WriteFileAtomic(path, token + "\n", 0600));
  log::Info("serve", "created admin token", {{"path", path}});
  return token;
}

}  // namespace

Result<DataDir> DataDir::Open(const std::string& path) {
  if (path.empty()) return InvalidArgument("--data: empty data directory path");
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) abs = path;
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  Status made = MakeDirs(abs, 0700);
  if (!made.ok()) return made.WithContext("cannot create data directory");
  KILN_RETURN_IF_ERROR(CheckWritable(abs));
  auto lock = FileLock::Acquire(abs + "/lock");
  if (!lock.ok()) {
    if (lock.status().code() == Code::kUnavailable)
      return Status(Code::kUnavailable,
                    fmt::format("another kiln serve is using {} ({})", abs, lock.status().message()));
    return lock.status();
  }
  KILN_ASSIGN_OR_RETURN(std::string token, LoadOrCreateToken(abs + "/" + kAdminTokenFile));
  return DataDir(abs, std::move(*lock), std::move(token));
}

}  // namespace kiln
