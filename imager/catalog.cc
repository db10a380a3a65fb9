#include "imager/catalog.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::imager {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

}  // namespace

const VersionRecord* ImageRecord::Find(int version) const {
  for (const auto& v : versions)
    if (v.version == version) return &v;
  return nullptr;
}

Status ValidateImageName(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return InvalidArgument(fmt::format("image name \"{}\" must be 1 to 64 characters", name));
  if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
    return InvalidArgument(
        fmt::format("image name \"{}\" must start with a letter or digit", name));
  for (char c : name)
    if (!NameChar(c))
      return InvalidArgument(
          fmt::format("image name \"{}\" may hold only a-z, 0-9, '.', '_' and '-'", name));
  // These name API paths under /api/v1/images/.
  for (std::string_view reserved : {"objects", "captures", "gc", "verify"})
    if (name == reserved)
      return InvalidArgument(fmt::format("image name \"{}\" is reserved", name));
  return Status::Ok();
}

Status ValidateTagName(std::string_view tag) {
  Status s = ValidateImageName(tag);
  if (!s.ok()) return InvalidArgument("tag" + s.message().substr(s.message().find(' ')));
  if (ParseUint(tag))
    return InvalidArgument(fmt::format("tag \"{}\" is all digits, like a version number", tag));
  return Status::Ok();
}

Json ImageRecordToJson(const ImageRecord& r) {
  Json versions = Json::array();
  for (const auto& v : r.versions)
    versions.push_back({{"version", v.version},
                        {"manifest", v.manifest},
                        {"created", v.created},
                        {"note", v.note},
                        {"source", v.source},
                        {"entries", v.entries},
                        {"bytes", v.bytes}});
  Json tags = Json::object();
  for (const auto& [k, v] : r.tags) tags[k] = v;
  return {{"name", r.name},
          {"current", r.current},
          {"next", r.next},
          {"versions", versions},
          {"tags", tags}};
}

Result<ImageRecord> ImageRecordFromJson(const Json& j) {
  try {
    ImageRecord r;
    r.name = j.at("name").get<std::string>();
    r.current = j.at("current").get<int>();
    r.next = j.at("next").get<int>();
    for (const auto& v : j.at("versions")) {
      VersionRecord vr;
      vr.version = v.at("version").get<int>();
      vr.manifest = v.at("manifest").get<std::string>();
      vr.created = v.value("created", int64_t{0});
      vr.note = v.value("note", "");
      vr.source = v.value("source", "");
      vr.entries = v.value("entries", uint64_t{0});
      vr.bytes = v.value("bytes", uint64_t{0});
      r.versions.push_back(std::move(vr));
    }
    for (const auto& [k, v] : j.at("tags").items()) r.tags[k] = v.get<int>();
    return r;
  } catch (const Json::exception& e) {
    return Corruption(std::string("image record: ") + e.what());
  }
}

Result<std::unique_ptr<FileCatalog>> FileCatalog::Open(const std::string& dir) {
  KILN_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  return std::unique_ptr<FileCatalog>(new FileCatalog(dir));
}

Result<std::vector<std::string>> FileCatalog::List() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return ErrnoError("opendir " + dir_, errno);
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (EndsWith(n, ".json")) names.push_back(n.substr(0, n.size() - 5));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<ImageRecord> FileCatalog::Load(const std::string& name) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  std::string path = dir_ + "/" + name + ".json";
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (::access(path.c_str(), F_OK) != 0)
      return NotFound(fmt::format("no image named \"{}\"", name));
    return text.status();
  }
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(*text, path));
  return ImageRecordFromJson(j);
}

Result<ImageRecord> FileCatalog::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  return Load(name);
}

Result<ImageRecord> FileCatalog::Update(const std::string& name, const Mutator& fn) {
  std::lock_guard lock(mu_);
  auto cur = Load(name);
  bool exists = cur.ok();
  if (!exists && cur.status().code() != Code::kNotFound) return cur.status();
  ImageRecord r;
  if (exists) {
    r = std::move(*cur);
  } else {
    r.name = name;
  }
  KILN_RETURN_IF_ERROR(fn(r, exists));
  KILN_RETURN_IF_ERROR(
      WriteFileAtomic(dir_ + "/" + name + ".json", ImageRecordToJson(r).dump(1) + "\n"));
  return r;
}

}  // namespace kiln::imager
