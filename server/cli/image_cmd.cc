#include "server/cli/image_cmd.h"

#include <fmt/format.h>

#include <ctime>
#include <memory>

#include "common/strings.h"
#include "imager/image_store.h"
#include "server/cli/progress_bar.h"

namespace kiln::cli {
namespace {

struct Flags {
  ClientFlags client;
  bool json = false;
  std::string ref, ref2, tag, to;
  bool remove = false;
  int keep = 0;
};

std::string When(int64_t t) {
  if (t == 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string ImagePath(const std::string& name) {
  return "/api/v1/images/" + UrlEncode(name);
}

int Ls(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto r = api.Get("/api/v1/images");
  if (!r.ok()) return Fail("image ls", r.status());
  if (f.json) {
    PrintJson(*r);
    return kExitOk;
  }
  fmt::print("{:<20} {:>7} {:>8} {:>8} {:>10}  {}\n", "IMAGE", "CURRENT", "VERSIONS", "ENTRIES",
             "SIZE", "CAPTURED (UTC)");
  for (const auto& i : (*r)["images"])
    fmt::print("{:<20} {:>7} {:>8} {:>8} {:>10}  {}\n", i.value("name", ""), i.value("current", 0),
               i.value("versions", 0), i.value("entries", 0),
               HumanBytes(i.value("bytes", uint64_t{0})), When(i.value("created", int64_t{0})));
  return kExitOk;
}

int Log(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto r = api.Get(ImagePath(f.ref));
  if (!r.ok()) return Fail("image log", r.status());
  if (f.json) {
    PrintJson(*r);
    return kExitOk;
  }
  const Json& versions = (*r)["versions"];
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    const Json& v = *it;
    std::string marks;
    if (v.value("current", false)) marks += " (current)";
    for (const auto& t : v["tags"]) marks += " [" + t.get<std::string>() + "]";
    fmt::print("{}@{}{}  {}  {} entries, {}  {}\n", f.ref, v.value("version", 0), marks,
               When(v.value("created", int64_t{0})), v.value("entries", 0),
               HumanBytes(v.value("bytes", uint64_t{0})), v.value("manifest", "").substr(0, 12));
    if (!v.value("note", "").empty()) fmt::print("    {}\n", v.value("note", ""));
    if (!v.value("source", "").empty()) fmt::print("    from {}\n", v.value("source", ""));
  }
  return kExitOk;
}

int Show(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto [name, ver] = imager::SplitImageRef(f.ref);
  auto r = api.Get(fmt::format("{}/versions/{}?entries=1", ImagePath(name),
                               UrlEncode(ver.empty() ? "current" : ver)));
  if (!r.ok()) return Fail("image show", r.status());
  if (f.json) {
    PrintJson(*r);
    return kExitOk;
  }
  const Json& v = (*r)["version"];
  fmt::print("{}@{}  manifest {}\n", name, v.value("version", 0), v.value("manifest", ""));
  fmt::print("captured {} UTC from {}: {} entries, {}\n", When(v.value("created", int64_t{0})),
             v.value("source", "?"), v.value("entries", 0),
             HumanBytes(v.value("bytes", uint64_t{0})));
  if (!v.value("note", "").empty()) fmt::print("note: {}\n", v.value("note", ""));
  std::string types;
  for (const auto& [t, n] : (*r)["types"].items())
    types += fmt::format(" {} {}", n.get<uint64_t>(), t);
  fmt::print("types:{}\n", types);
  for (const auto& e : (*r)["entries"]) {
    std::string type = e.value("type", "");
    std::string extra;
    if (type == "symlink") extra = " -> " + e.value("target", "");
    if (type == "hardlink") extra = " => " + e.value("target", "");
    if (e.contains("rdev")) extra = " " + e.value("rdev", "");
    if (e.contains("xattrs")) {
      std::string names;
      for (const auto& [k, _] : e["xattrs"].items()) names += (names.empty() ? "" : ",") + k;
      extra += " xattrs=" + names;
    }
    fmt::print("{:<10} {:>6} {:>5}:{:<5} {:>10} {}{}\n", type, e.value("mode", ""),
               e.value("uid", 0), e.value("gid", 0),
               type == "file" ? HumanBytes(e.value("size", uint64_t{0})) : "-", e.value("path", ""),
               extra);
  }
  return kExitOk;
}

int Diff(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto [na, va] = imager::SplitImageRef(f.ref);
  auto [nb, vb] = imager::SplitImageRef(f.ref2);
  if (na != nb)
    return Fail("image diff",
                InvalidArgument("both versions must be of one image: " + na + " and " + nb));
  auto r = api.Get(fmt::format("{}/diff?from={}&to={}", ImagePath(na),
                               UrlEncode(va.empty() ? "current" : va),
                               UrlEncode(vb.empty() ? "current" : vb)));
  if (!r.ok()) return Fail("image diff", r.status());
  if (f.json) {
    PrintJson(*r);
    return kExitOk;
  }
  for (const auto& c : (*r)["changes"]) {
    std::string kind = c.value("change", "");
    char mark = kind == "added" ? '+' : kind == "removed" ? '-' : '~';
    std::string what;
    if (c.contains("what")) {
      for (const auto& w : c["what"]) what += (what.empty() ? " (" : ", ") + w.get<std::string>();
      what += ")";
    }
    fmt::print("{} {}{}\n", mark, c.value("path", ""), what);
  }
  const Json& s = (*r)["summary"];
  fmt::print(stderr, "{}@{} -> {}@{}: {} added, {} removed, {} changed\n", na,
             (*r).value("from", 0), nb, (*r).value("to", 0), s.value("added", 0),
             s.value("removed", 0), s.value("changed", 0));
  return kExitOk;
}

int Tag(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto [name, ver] = imager::SplitImageRef(f.ref);
  Result<Json> r = f.remove
                       ? api.Delete(fmt::format("{}/tags/{}", ImagePath(name), UrlEncode(f.tag)))
                       : api.Put(fmt::format("{}/tags/{}", ImagePath(name), UrlEncode(f.tag)),
                                 {{"version", ver.empty() ? "current" : ver}});
  if (!r.ok()) return Fail("image tag", r.status());
  if (f.json) {
    PrintJson(*r);
  } else if (f.remove) {
    fmt::print("{}: tag {} removed\n", name, f.tag);
  } else {
    fmt::print("{}@{} is now {}@{}\n", name, f.tag, name, (*r)["tags"].value(f.tag, 0));
  }
  return kExitOk;
}

int Rollback(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Json body = Json::object();
  if (!f.to.empty()) body["to"] = f.to;
  auto r = api.Post(ImagePath(f.ref) + "/rollback", body);
  if (!r.ok()) return Fail("image rollback", r.status());
  if (f.json)
    PrintJson(*r);
  else
    fmt::print("{}: current version is now {}\n", f.ref, (*r).value("current", 0));
  return kExitOk;
}

int Gc(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Json body = Json::object();
  if (f.keep > 0) body["keep"] = f.keep;
  auto r = api.Post("/api/v1/images/gc", body);
  if (!r.ok()) return Fail("image gc", r.status());
  if (f.json)
    PrintJson(*r);
  else
    fmt::print("gc: {} versions dropped, {} objects removed ({}), {} objects kept\n",
               r->value("versions_dropped", 0), r->value("objects_removed", 0),
               HumanBytes(r->value("bytes_freed", uint64_t{0})), r->value("objects_kept", 0));
  return kExitOk;
}

int Verify(const Flags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Result<Json> list = Status(Code::kInternal, "unset");
  if (f.ref.empty()) {
    list = api.Get("/api/v1/images/objects");
  } else {
    auto [name, ver] = imager::SplitImageRef(f.ref);
    list = api.Get(fmt::format("{}/versions/{}/objects", ImagePath(name),
                               UrlEncode(ver.empty() ? "current" : ver)));
  }
  if (!list.ok()) return Fail("image verify", list.status());
  const Json& objs = (*list)["objects"];
  uint64_t total = 0, done = 0, verified = 0;
  for (const auto& o : objs) total += o.value("size", uint64_t{0});
  ProgressBar bar("verify");
  Json bad = Json::array();
  const size_t kBatch = 256;
  for (size_t i = 0; i < objs.size(); i += kBatch) {
    Json digests = Json::array();
    for (size_t k = i; k < std::min(objs.size(), i + kBatch); ++k) {
      digests.push_back(objs[k]["digest"]);
      done += objs[k].value("size", uint64_t{0});
    }
    auto r = api.Post("/api/v1/images/verify", {{"digests", digests}});
    if (!r.ok()) return Fail("image verify", r.status());
    verified += r->value("verified", uint64_t{0});
    for (const auto& b : (*r)["bad"]) bad.push_back(b);
    bar.Update(done, total, std::min(objs.size(), i + kBatch), objs.size());
  }
  bar.Done();
  if (f.json) {
    PrintJson({{"verified", verified}, {"bad", bad}});
  } else {
    for (const auto& b : bad)
      fmt::print("BAD {}: {}\n", b.value("digest", ""), b.value("error", ""));
    fmt::print("verify: {} objects verified, {} bad\n", verified, bad.size());
  }
  return bad.empty() ? kExitOk : kExitFailed;
}

CLI::App* Sub(CLI::App* image, const char* name, const char* desc, const std::shared_ptr<Flags>& f,
              const char* footer) {
  CLI::App* c = image->add_subcommand(name, desc);
  AddClientOptions(c, &f->client);
  c->add_flag("--json", f->json, "print JSON");
  c->footer(footer);
  return c;
}

}  // namespace

void RegisterImageCommand(CLI::App& app, CliState* state) {
  CLI::App* image =
      app.add_subcommand("image", "Golden images: capture, list, diff, deploy, roll back");
  image->require_subcommand(1);
  image->footer(
      "An image is a named list of versions with a current pointer and tags. A version is a\n"
      "manifest of a filesystem tree; its SHA-256 names it. NAME@V picks a version: a number,\n"
      "a tag, `current` (the default) or `latest`.\n\n"
      "Examples:\n  kiln image capture web --from-dir /srv/golden --note 'nginx 1.22'\n"
      "  kiln image log web\n  kiln image diff web@1 web@2\n  kiln image deploy web@2 --to "
      "/mnt/target\n"
      "  kiln image rollback web");

  auto f = std::make_shared<Flags>();
  auto run = [state](std::function<int()> fn) { return [state, fn] { state->exit_code = fn(); }; };

  Sub(image, "ls", "List images with their current version", f, "Example:\n  kiln image ls --json")
      ->callback(run([f] { return Ls(*f); }));

  auto* log = Sub(image, "log", "List an image's versions, newest first", f,
                  "Example:\n  kiln image log web");
  log->add_option("NAME", f->ref, "image name")->required();
  log->callback(run([f] { return Log(*f); }));

  auto* show = Sub(
      image, "show", "Show a version and its entries", f,
      "Example:\n  kiln image show web@3\n  kiln image show web --json | jq '.entries | length'");
  show->add_option("NAME[@V]", f->ref, "image and version (default: current)")->required();
  show->callback(run([f] { return Show(*f); }));

  auto* diff =
      Sub(image, "diff", "Show what changed between two versions", f,
          "Lines: + added, - removed, ~ changed (content, mode, owner, mtime, xattrs, ...).\n\n"
          "Example:\n  kiln image diff web@3 web@4");
  diff->add_option("A", f->ref, "NAME@V, the older version")->required();
  diff->add_option("B", f->ref2, "NAME@V, the newer version")->required();
  diff->callback(run([f] { return Diff(*f); }));

  auto* tag = Sub(image, "tag", "Name a version (or remove a name with --delete)", f,
                  "Examples:\n  kiln image tag web@3 prod\n  kiln image tag web prod --delete");
  tag->add_option("NAME[@V]", f->ref, "image and version (default: current)")->required();
  tag->add_option("TAG", f->tag, "tag name (letters, digits, . _ -; not all digits)")->required();
  tag->add_flag("--delete", f->remove, "remove the tag");
  tag->callback(run([f] { return Tag(*f); }));

  auto* rb = Sub(image, "rollback", "Move the current pointer back (nothing is rewritten)", f,
                 "Without --to, the current pointer moves to the version before it.\n\n"
                 "Examples:\n  kiln image rollback web\n  kiln image rollback web --to 3");
  rb->add_option("NAME", f->ref, "image name")->required();
  rb->add_option("--to", f->to, "version number or tag to make current");
  rb->callback(run([f] { return Rollback(*f); }));

  auto* gc =
      Sub(image, "gc", "Remove objects no retained version uses", f,
          "With --keep N, each image keeps its newest N versions plus its current and tagged\n"
          "ones; older version records are dropped first.\n\nExample:\n  kiln image gc --keep 5");
  gc->add_option("--keep", f->keep, "versions to keep per image")->check(CLI::PositiveNumber);
  gc->callback(run([f] { return Gc(*f); }));

  auto* verify = Sub(image, "verify", "Re-hash stored objects (one version's, or all)", f,
                     "Exit status 1 when any object is damaged; each is listed.\n\n"
                     "Examples:\n  kiln image verify\n  kiln image verify web@3");
  verify->add_option("NAME[@V]", f->ref, "only the objects this version uses");
  verify->callback(run([f] { return Verify(*f); }));

  RegisterImageTransferCommands(image, state);
}

}  // namespace kiln::cli
