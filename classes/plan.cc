#include "classes/plan.h"

#include <fmt/format.h>

#include "classes/names.h"
#include "common/base64.h"

namespace kiln::classes {
namespace {

// Content travels as text when it is UTF-8, else base64.
void PutContent(Json& j, const std::string& content, const std::string& sha256, bool utf8) {
  if (utf8) {
    j["encoding"] = "utf-8";
    j["content"] = content;
  } else {
    j["encoding"] = "base64";
    j["content"] = Base64Encode(content);
  }
  j["size"] = content.size();
  j["sha256"] = sha256;
}

Json ReplacedJson(const std::vector<Replaced>& r, bool with_value) {
  Json a = Json::array();
  for (const auto& x : r) {
    Json e = {{"class", x.cls}, {"source", x.loc.ToString()}};
    if (with_value) e["value"] = x.value;
    a.push_back(std::move(e));
  }
  return a;
}

Json ReplacedJson(const std::vector<Overridden>& r) {
  Json a = Json::array();
  for (const auto& x : r) a.push_back({{"class", x.cls}, {"source", x.loc.ToString()}});
  return a;
}

}  // namespace

bool ParseImageRef(const std::string& ref, std::string* name, std::string* version) {
  size_t at = ref.find('@');
  *name = ref.substr(0, at);
  *version = at == std::string::npos ? "" : ref.substr(at + 1);
  auto ok = [](const std::string& s, bool first_alnum) {
    if (s.empty() || s.size() > 64) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!(alnum || (i > 0 && (c == '-' || c == '_' || c == '.')))) return false;
      if (i == 0 && first_alnum && !alnum) return false;
    }
    return true;
  };
  if (!ok(*name, true)) return false;
  if (at != std::string::npos && !ok(*version, true)) return false;
  return true;
}

Json PlanToJson(const Plan& p, bool explain) {
  Json j;
  j["kind"] = "kiln.plan";
  j["version"] = kPlanVersion;
  j["node"] = {{"id", p.node_id}, {"hostname", p.hostname}, {"macs", p.macs}};
  j["space"] = {{"dir", p.space_dir}, {"digest", p.space_digest}};
  j["classes"] = p.classes;
  Json vars = Json::object();
  for (const auto& [k, v] : p.vars) vars[k] = v.value;
  j["variables"] = std::move(vars);
  if (p.image)
    j["image"] = {{"ref", p.image->ref},
                  {"name", p.image->name},
                  {"version", p.image->version},
                  {"class", p.image->cls},
                  {"source", p.image->loc.ToString()}};
  else
    j["image"] = nullptr;

  Json disks = Json::array(), mounts = Json::array();
  for (const auto& d : p.disks) {
    Json parts = Json::array();
    for (const auto& part : d.parts) {
      Json pj = {{"number", part.number},
                 {"name", part.name},
                 {"device", part.device},
                 {"start_bytes", part.start_bytes},
                 {"size_bytes", part.size_bytes},
                 {"size", part.size_text},
                 {"type", std::string(PartTypeName(part.type))},
                 {"gpt_type", std::string(GptTypeGuid(part.type))},
                 {"mbr_type", std::string(MbrTypeId(part.type))},
                 {"fs", part.fs},
                 {"mount", part.mount},
                 {"options", part.options},
                 {"label", part.label},
                 {"mkfs_options", part.mkfs},
                 {"source", part.loc.ToString()}};
      parts.push_back(std::move(pj));
      if (!part.mount.empty() || part.fs == "swap")
        mounts.push_back({{"mount", part.fs == "swap" ? "none" : part.mount},
                          {"device", part.device},
                          {"fs", part.fs},
                          {"options", part.options.empty() ? "defaults" : part.options}});
    }
    disks.push_back({{"role", d.role},
                     {"class", d.cls},
                     {"source", d.loc.ToString()},
                     {"on", d.selector},
                     {"name", d.name},
                     {"device", d.device},
                     {"size_bytes", d.size_bytes},
                     {"usable_bytes", d.usable_bytes},
                     {"unallocated_bytes", d.unallocated_bytes},
                     {"table", d.table},
                     {"partitions", std::move(parts)},
                     {"overrode", ReplacedJson(d.overrode)}});
  }
  // Mounts in the order they must happen: parents before children.
  std::stable_sort(mounts.begin(), mounts.end(), [](const Json& a, const Json& b) {
    auto depth = [](const std::string& m) {
      if (m == "none") return 1000;
      if (m == "/") return 0;
      return static_cast<int>(std::count(m.begin(), m.end(), '/'));
    };
    return depth(a["mount"].get<std::string>()) < depth(b["mount"].get<std::string>());
  });
  j["disks"] = std::move(disks);
  j["mounts"] = std::move(mounts);

  Json files = Json::array();
  for (const auto& f : p.files) {
    Json fj = {{"path", f.path},
               {"class", f.cls},
               {"source", f.source},
               {"owner", f.owner},
               {"group", f.group},
               {"mode", fmt::format("{:04o}", f.mode)},
               {"substituted", f.substituted}};
    PutContent(fj, f.content, f.sha256, f.utf8);
    files.push_back(std::move(fj));
  }
  j["files"] = std::move(files);
  Json scripts = Json::array();
  for (const auto& s : p.scripts) {
    Json sj = {{"class", s.cls}, {"name", s.name}, {"source", s.source}};
    PutContent(sj, s.content, s.sha256, s.utf8);
    scripts.push_back(std::move(sj));
  }
  j["scripts"] = std::move(scripts);
  Json hooks = Json::array();
  for (const auto& h : p.hooks) {
    Json hj = {{"phase", h.phase}, {"class", h.cls}, {"source", h.source}};
    PutContent(hj, h.content, h.sha256, h.utf8);
    hooks.push_back(std::move(hj));
  }
  j["hooks"] = std::move(hooks);

  if (explain) {
    Json ex = Json::array();
    for (const auto& d : p.explain) {
      Json dj = {{"what", d.what}, {"subject", d.subject}, {"action", d.action}};
      if (!d.value.is_null()) dj["value"] = d.value;
      if (!d.cls.empty()) dj["class"] = d.cls;
      if (d.loc.known()) dj["source"] = d.loc.ToString();
      if (!d.line_text.empty()) dj["line"] = d.line_text;
      if (!d.note.empty()) dj["note"] = d.note;
      if (!d.overrode.empty())
        dj["overrode"] = ReplacedJson(d.overrode, d.what == "variable" || d.what == "image");
      ex.push_back(std::move(dj));
    }
    j["explain"] = std::move(ex);
  }
  return j;
}

}  // namespace kiln::classes
