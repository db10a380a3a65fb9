#include "agent/target_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "imager/path_util.h"
#include "imager/tree_ops.h"

namespace kiln::agent {
namespace {

// Reads a small file of the target (etc/passwd) through the confined tree.
std::string ReadTargetFile(imager::Tree& tree, const std::string& dir, const std::string& name) {
  auto d = tree.Dir(dir);
  if (!d.ok()) return "";
  UniqueFd fd(::openat(*d, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return "";
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) break;
  }
  return out;
}

// Makes every missing directory of dir (a manifest path) under the root.
Status MakeParents(imager::Tree& tree, const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  auto have = tree.Dir(dir);
  if (have.ok()) return Status::Ok();
  if (have.status().code() != Code::kNotFound) return have.status();
  size_t slash = dir.rfind('/');
  std::string parent = slash == std::string::npos ? "" : dir.substr(0, slash);
  std::string name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  KILN_RETURN_IF_ERROR(MakeParents(tree, parent));
  KILN_ASSIGN_OR_RETURN(int pfd, tree.Dir(parent));
  if (::mkdirat(pfd, name.c_str(), 0755) != 0 && errno != EEXIST)
    return ErrnoError("creating directory /" + dir + " in the target", errno);
  return Status::Ok();
}

Status WriteOne(imager::Tree& tree, const Json& f, const std::string& passwd,
                const std::string& group, uint64_t* bytes) {
  KILN_ASSIGN_OR_RETURN(std::string path, JsonField<std::string>(f, "path"));
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (path.empty() || path[0] != '/')
    return InvalidArgument(fmt::format("path \"{}\": must be absolute", path));
  KILN_RETURN_IF_ERROR(imager::ValidateEntryPath(rel).WithContext("path \"" + path + "\""));

  std::string content = f.value("content", "");
  if (f.value("encoding", "utf-8") == "base64") {
    KILN_ASSIGN_OR_RETURN(content, Base64Decode(content));
  } else if (f.value("encoding", "utf-8") != "utf-8") {
    return InvalidArgument(
        fmt::format("encoding \"{}\" is not utf-8 or base64", f.value("encoding", "")));
  }
  std::string mode_text = f.value("mode", "0644");
  unsigned mode = 0;
  for (char c : mode_text) {
    if (c < '0' || c > '7' || mode > 07777)
      return InvalidArgument(
          fmt::format("mode \"{}\": expected an octal number such as 0644", mode_text));
    mode = mode * 8 + unsigned(c - '0');
  }
  if (mode_text.empty() || mode > 07777)
    return InvalidArgument(
        fmt::format("mode \"{}\": expected an octal number such as 0644", mode_text));
  KILN_ASSIGN_OR_RETURN(unsigned uid, LookupId(passwd, "/etc/passwd", f.value("owner", "root")));
  KILN_ASSIGN_OR_RETURN(unsigned gid, LookupId(group, "/etc/group", f.value("group", "root")));

  size_t slash = rel.rfind('/');
  std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  KILN_RETURN_IF_ERROR(MakeParents(tree, dir));
  KILN_ASSIGN_OR_RETURN(int dfd, tree.Dir(dir));
  struct stat st {};
  if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    return FailedPrecondition(fmt::format("{} is a directory in the target", path));

  std::string tmp = tree.TempName();
  UniqueFd fd(
      ::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("creating " + path + " in the target", errno);
  Status s = WriteAll(fd.get(), content, path);
  if (s.ok() && ::fchown(fd.get(), uid, gid) != 0) s = ErrnoError("chown " + path, errno);
  if (s.ok() && ::fchmod(fd.get(), mode) != 0) s = ErrnoError("chmod " + path, errno);
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoError("fsync " + path, errno);
  if (s.ok() && ::renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0)
    s = ErrnoError("renaming into " + path, errno);
  if (!s.ok()) ::unlinkat(dfd, tmp.c_str(), 0);
  *bytes += content.size();
  return s;
}

}  // namespace

Result<unsigned> LookupId(const std::string& db_text, const std::string& db_name,
                          const std::string& name) {
  if (name.empty()) return InvalidArgument("empty user or group name");
  if (auto n = ParseUint(name); n && *n < 0xffffffffu) return static_cast<unsigned>(*n);
  for (const std::string& line : Split(db_text, '\n')) {
    auto fields = Split(line, ':');
    if (fields.size() >= 3 && fields[0] == name) {
      if (auto id = ParseUint(fields[2]); id && *id < 0xffffffffu)
        return static_cast<unsigned>(*id);
    }
  }
  // An image without /etc/passwd (a chroot tree, an appliance) still has root.
  if (name == "root") return 0u;
  return NotFound(fmt::format("\"{}\" is not in the target's {}", name, db_name));
}

Result<InstalledFiles> InstallFiles(const std::string& root, const Json& files,
                                    const std::function<void(const std::string&)>& log) {
  InstalledFiles done;
  if (files.is_null()) return done;
  if (!files.is_array()) return InvalidArgument("plan.files: expected an array");
  KILN_ASSIGN_OR_RETURN(imager::Tree tree, imager::Tree::Open(root, false));
  std::string passwd = ReadTargetFile(tree, "etc", "passwd");
  std::string group = ReadTargetFile(tree, "etc", "group");
  for (size_t i = 0; i < files.size(); ++i) {
    const Json& f = files[i];
    std::string what = fmt::format("plan.files[{}]", i);
    if (f.is_object())
      what = fmt::format("{} ({})", f.value("path", what), f.value("source", what));
    if (!f.is_object()) return InvalidArgument(what + ": expected an object");
    uint64_t bytes = 0;
    Status s = WriteOne(tree, f, passwd, group, &bytes);
    if (!s.ok()) return s.WithContext("installing " + what);
    ++done.files;
    done.bytes += bytes;
    if (log)
      log(fmt::format("installed {} ({} bytes, {}:{} {})", f.value("path", ""), bytes,
                      f.value("owner", "root"), f.value("group", "root"), f.value("mode", "0644")));
  }
  return done;
}

}  // namespace kiln::agent
