#include "classes/resolver.h"

#include <fmt/format.h>

#include <algorithm>

#include "classes/names.h"
#include "common/hash.h"
#include "common/strings.h"

namespace kiln::classes {

struct Resolver::Evaluator {
  explicit Evaluator(SandboxLimits limits) : lua(limits) {}
  LuaSandbox lua;
  std::vector<int> rules;           // chunk ids, parallel to space.rules
  std::map<std::string, int> vars;  // by class
  bool ok = true;
  Diagnostic error;
};

namespace {

// The class list being built, with the story of each change.
class ClassList : public ClassHost {
 public:
  ClassList(const Space& space, Plan* plan, bool explain)
      : space_(space), plan_(plan), explain_(explain) {}

  void SetSource(const LuaFile* f) { file_ = f; }

  bool Has(std::string_view cls) const override {
    return std::find(plan_->classes.begin(), plan_->classes.end(), cls) != plan_->classes.end();
  }
  std::vector<std::string> Classes() const override { return plan_->classes; }

  std::string Add(const std::string& cls, int line) override {
    if (!IsClassName(cls)) return fmt::format("\"{}\" is not a class name (an identifier)", cls);
    if (cls == kDefaultClass || cls == kLastClass)
      return fmt::format("{} is always there; rules cannot add it", cls);
    if (!space_.declared.count(cls))
      return fmt::format("class {} is not declared in classes.list", cls);
    bool had = Has(cls);
    if (!had) plan_->classes.push_back(cls);
    Record(cls, had ? "kept" : "added", line,
           had ? "already present; it keeps its earlier place" : "");
    return "";
  }

  std::string Remove(const std::string& cls, int line) override {
    if (cls == kDefaultClass) return "DEFAULT cannot be removed";
    auto it = std::find(plan_->classes.begin(), plan_->classes.end(), cls);
    bool had = it != plan_->classes.end();
    if (had) plan_->classes.erase(it);
    Record(cls, "removed", line, had ? "" : "was not present");
    return "";
  }

  // A class added by kiln itself or from hosts/ or the node record.
  void AddFixed(const std::string& cls, SourceLoc loc, std::string note) {
    bool had = Has(cls);
    if (!had) plan_->classes.push_back(cls);
    if (!explain_) return;
    Decision d;
    d.what = "class";
    d.subject = cls;
    d.action = had ? "kept" : "added";
    d.loc = std::move(loc);
    d.note = had ? note + "; already present, it keeps its earlier place" : std::move(note);
    plan_->explain.push_back(std::move(d));
  }

 private:
  void Record(const std::string& cls, const char* action, int line, std::string note) {
    if (!explain_) return;
    Decision d;
    d.what = "class";
    d.subject = cls;
    d.action = action;
    if (file_) {
      d.loc = {file_->file, line, 0};
      d.line_text = std::string(Trim(LineOf(file_->source, line)));
    }
    d.note = std::move(note);
    plan_->explain.push_back(std::move(d));
  }

  const Space& space_;
  Plan* plan_;
  bool explain_;
  const LuaFile* file_ = nullptr;
};

Diagnostic Plain(std::string message) {
  return PlainDiagnostic("", std::move(message));
}

// ${VAR} substitution in a file; $${ is a literal ${.
bool Substitute(const FileVariant& f, const std::map<std::string, PlanVar>& vars, std::string* out,
                Diagnostic* err) {
  const std::string& in = f.content;
  out->clear();
  out->reserve(in.size());
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
    }
    if (c == '$' && i + 2 < in.size() && in[i + 1] == '$' && in[i + 2] == '{') {
      *out += "${";
      i += 2;
      continue;
    }
    if (c != '$' || i + 1 >= in.size() || in[i + 1] != '{') {
      *out += c;
      continue;
    }
    int col = static_cast<int>(i - line_start) + 1;
    size_t close = in.find('}', i + 2);
    size_t nl = in.find('\n', i);
    if (close == std::string::npos || (nl != std::string::npos && nl < close)) {
      *err = MakeDiagnostic(f.file, in, line, col, "unterminated ${ (write $${ for a literal ${)");
      return false;
    }
    std::string name = in.substr(i + 2, close - i - 2);
    if (!IsVarName(name)) {
      *err = MakeDiagnostic(f.file, in, line, col, "\"${" + name + "}\": not a variable name");
      return false;
    }
    auto it = vars.find(name);
    if (it == vars.end()) {
      *err = MakeDiagnostic(
          f.file, in, line, col,
          fmt::format("${{{}}}: no class of this node sets variable {}", name, name));
      return false;
    }
    const Json& v = it->second.value;
    if (v.is_string())
      *out += v.get<std::string>();
    else if (v.is_boolean())
      *out += v.get<bool>() ? "true" : "false";
    else if (v.is_number())
      *out += v.dump();
    else {
      *err = MakeDiagnostic(
          f.file, in, line, col,
          fmt::format("${{{}}} is a {} (set at {}); only strings, numbers and booleans substitute",
                      name, v.is_array() ? "list" : "map", it->second.loc.ToString()));
      return false;
    }
    i = close;
  }
  return true;
}

}  // namespace

Resolver::Resolver(std::shared_ptr<const Space> space, SandboxLimits limits)
    : space_(std::move(space)), limits_(limits) {}
Resolver::~Resolver() = default;

std::unique_ptr<Resolver::Evaluator> Resolver::Acquire() const {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto e = std::move(idle_.back());
      idle_.pop_back();
      return e;
    }
    ++created_;
  }
  auto e = std::make_unique<Evaluator>(limits_);
  for (const auto& r : space_->rules) {
    int id = e->lua.Compile(r.file, r.source, &e->error);
    if (id < 0) {
      e->ok = false;
      return e;
    }
    e->rules.push_back(id);
  }
  for (const auto& [cls, f] : space_->vars) {
    int id = e->lua.Compile(f.file, f.source, &e->error);
    if (id < 0) {
      e->ok = false;
      return e;
    }
    e->vars[cls] = id;
  }
  return e;
}

void Resolver::Release(std::unique_ptr<Evaluator> e) const {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(e));
}

size_t Resolver::sandboxes() const {
  std::lock_guard lock(mu_);
  return created_;
}

size_t Resolver::lua_bytes() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& e : idle_) n += e->lua.memory_in_use();
  return n;
}

Result<Plan> Resolver::Resolve(const NodeRecord& node, const ResolveOptions& opts) const {
  Plan plan;
  Diagnostic err;
  if (!Resolve(node, opts, &plan, &err)) return InvalidArgument(err.Render());
  return plan;
}

bool Resolver::Resolve(const NodeRecord& node, const ResolveOptions& opts, Plan* plan,
                       Diagnostic* err) const {
  const Space& space = *space_;
  const bool explain = opts.explain;
  *plan = Plan{};
  plan->node_id = node.id;
  plan->hostname = node.hostname;
  plan->macs = node.macs;
  plan->space_dir = space.dir;
  plan->space_digest = space.digest;
  if (!IsHostName(node.hostname)) {
    *err = Plain("node " + node.id + ": hostname \"" + node.hostname +
                 "\" is not a short lower-case hostname");
    return false;
  }
  if (space.declared.count(node.hostname)) {
    *err = Plain("node " + node.id + ": hostname " + node.hostname +
                 " is also the name of a declared class");
    return false;
  }
  for (const auto& c : node.classes) {
    if (!IsClassName(c) || !space.declared.count(c)) {
      *err = Plain(fmt::format("node {}: explicit class \"{}\" is not declared in classes.list",
                               node.id, c));
      return false;
    }
  }
  Json node_json = {
      {"id", node.id}, {"hostname", node.hostname}, {"macs", node.macs}, {"classes", node.classes}};

  auto ev = Acquire();
  struct Returner {
    const Resolver* r;
    std::unique_ptr<Evaluator>* e;
    ~Returner() { r->Release(std::move(*e)); }
  } returner{this, &ev};
  if (!ev->ok) {
    *err = ev->error;
    return false;
  }

  // 1. Classes.
  ClassList list(space, plan, explain);
  list.AddFixed(std::string(kDefaultClass), {}, "every node starts with DEFAULT");
  EvalInput in;
  in.facts = &node.facts;
  in.node = &node_json;
  in.classes = &list;
  for (size_t i = 0; i < space.rules.size(); ++i) {
    const LuaFile& rule = space.rules[i];
    list.SetSource(&rule);
    EvalOutput out;
    if (!ev->lua.Run(ev->rules[i], LuaSandbox::Kind::kRule, in, &out, err)) return false;
    if (explain)
      for (const auto& p : out.prints)
        plan->explain.push_back(
            {"output", rule.file, "printed", p.text, "", {rule.file, p.line, 0}, {}, {}, {}});
  }
  list.SetSource(nullptr);
  if (auto h = space.hosts.find(node.hostname); h != space.hosts.end())
    for (const auto& e : h->second) list.AddFixed(e.cls, e.loc, "listed for this host");
  for (const auto& c : node.classes) list.AddFixed(c, {}, "explicit class on the node record");
  list.AddFixed(node.hostname, {}, "the hostname");
  list.AddFixed(std::string(kLastClass), {}, "every node ends with LAST");

  // 2. Variables, class by class.
  std::map<std::string, Json> values;
  in.vars = &values;
  in.classes = &list;
  for (const auto& cls : plan->classes) {
    auto vf = ev->vars.find(cls);
    if (vf == ev->vars.end()) continue;
    const LuaFile& file = space.vars.at(cls);
    EvalOutput out;
    if (!ev->lua.Run(vf->second, LuaSandbox::Kind::kVars, in, &out, err)) return false;
    for (auto& v : out.vars) {
      SourceLoc loc{file.file, v.line, 0};
      auto it = plan->vars.find(v.name);
      std::vector<Replaced> over;
      if (it != plan->vars.end()) {
        over = it->second.overrode;
        over.push_back({it->second.cls, it->second.loc, it->second.value});
      }
      if (explain) {
        Decision d;
        d.what = "variable";
        d.subject = v.name;
        d.action = v.unset ? "unset" : "set";
        d.value = v.value;
        d.cls = cls;
        d.loc = loc;
        d.line_text = std::string(Trim(LineOf(file.source, v.line)));
        if (it != plan->vars.end())
          d.overrode.push_back({it->second.cls, it->second.loc, it->second.value});
        plan->explain.push_back(std::move(d));
      }
      if (v.unset) {
        if (it != plan->vars.end()) plan->vars.erase(it);
        values.erase(v.name);
        continue;
      }
      values[v.name] = v.value;
      plan->vars[v.name] = PlanVar{std::move(v.value), cls, loc, std::move(over)};
    }
    if (explain)
      for (const auto& p : out.prints)
        plan->explain.push_back(
            {"output", file.file, "printed", p.text, cls, {file.file, p.line, 0}, {}, {}, {}});
  }

  // 3. The image: the variable IMAGE.
  if (auto it = plan->vars.find("IMAGE"); it != plan->vars.end()) {
    const PlanVar& v = it->second;
    std::string name, version;
    const LuaFile& file = space.vars.at(v.cls);
    if (!v.value.is_string() || !ParseImageRef(v.value.get<std::string>(), &name, &version)) {
      *err = MakeDiagnostic(
          file.file, file.source, v.loc.line, 0,
          fmt::format("IMAGE = {}: an image is \"name\" or \"name@version\" (letters, "
                      "digits, '-', '_', '.')",
                      v.value.dump()));
      return false;
    }
    plan->image = PlanImage{v.value.get<std::string>(), name, version, v.cls, v.loc};
    if (explain) {
      Decision d{"image", name, "chose", v.value, v.cls, v.loc, {}, {}, {}};
      for (const auto& o : v.overrode) d.overrode.push_back(o);
      plan->explain.push_back(std::move(d));
    }
  }

  // 4. The disk layout.
  std::vector<ClassLayout> layouts;
  for (const auto& cls : plan->classes)
    if (auto d = space.disks.find(cls); d != space.disks.end())
      layouts.push_back({cls, &d->second});
  std::string firmware;
  if (node.facts.contains("firmware") && node.facts["firmware"].is_object())
    firmware = node.facts["firmware"].value("type", "");
  if (!ResolveDisks(layouts, DisksOf(node.facts), firmware, &plan->disks, err)) return false;
  if (explain) {
    for (const auto& d : plan->disks) {
      Decision dd{"disk",
                  d.role,
                  "chose",
                  fmt::format("{} {} ({}, {})", d.device, HumanBytes(d.size_bytes), d.table,
                              d.selector.empty() ? "next free disk" : "on=" + d.selector),
                  d.cls,
                  d.loc,
                  {},
                  {},
                  {}};
      for (const auto& o : d.overrode) dd.overrode.push_back({o.cls, o.loc, nullptr});
      plan->explain.push_back(std::move(dd));
      for (const auto& p : d.parts) {
        std::string what = fmt::format(
            "{} {} {}{}{}", p.device, HumanBytes(p.size_bytes), p.fs.empty() ? "raw" : p.fs,
            p.mount.empty() ? "" : " on " + p.mount,
            p.size_text == HumanBytes(p.size_bytes) ? "" : " (size=" + p.size_text + ")");
        plan->explain.push_back(
            {"partition", d.role + "." + p.name, "sized", what, d.cls, p.loc, {}, {}, {}});
      }
    }
  }

  // 5. Files: the highest class that has one wins.
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < plan->classes.size(); ++i) rank[plan->classes[i]] = i;
  for (const auto& [target, sf] : space.files) {
    const FileVariant* win = nullptr;
    size_t win_rank = 0;
    std::vector<std::pair<size_t, const FileVariant*>> losers;
    for (const auto& [cls, v] : sf.by_class) {
      auto r = rank.find(cls);
      if (r == rank.end()) continue;
      if (!win || r->second > win_rank) {
        if (win) losers.push_back({win_rank, win});
        win = &v;
        win_rank = r->second;
      } else {
        losers.push_back({r->second, &v});
      }
    }
    if (!win) continue;
    std::sort(losers.begin(), losers.end());
    PlanFile f;
    f.path = target;
    f.cls = win->cls;
    f.source = win->file;
    f.owner = win->owner;
    f.group = win->group;
    f.mode = win->mode;
    f.substituted = win->subst;
    if (win->subst) {
      if (!Substitute(*win, plan->vars, &f.content, err)) return false;
      f.sha256 = Sha256Hex(f.content);
      f.utf8 = IsUtf8(f.content);
    } else {
      f.content = win->content;
      f.sha256 = win->sha256;
      f.utf8 = win->utf8;
    }
    for (const auto& [r, v] : losers) f.overrode.push_back({v->cls, {v->file, 0, 0}, nullptr});
    if (explain) {
      Decision d{"file",
                 target,
                 "installs",
                 fmt::format("{} {}:{} {:04o}{}", f.source, f.owner, f.group, f.mode,
                             f.substituted ? ", ${VAR} substituted" : ""),
                 f.cls,
                 {f.source, 0, 0},
                 {},
                 f.overrode,
                 {}};
      plan->explain.push_back(std::move(d));
    }
    plan->files.push_back(std::move(f));
  }

  // 6. Scripts and hooks: every class's, in class order.
  for (const auto& cls : plan->classes) {
    if (auto s = space.scripts.find(cls); s != space.scripts.end())
      for (const auto& sc : s->second) {
        plan->scripts.push_back({sc.cls, sc.name, sc.file, sc.content, sc.sha256, sc.utf8});
        if (explain)
          plan->explain.push_back({"script",
                                   sc.file,
                                   "runs",
                                   fmt::format("step {}", plan->scripts.size()),
                                   cls,
                                   {sc.file, 0, 0},
                                   {},
                                   {},
                                   {}});
      }
  }
  for (const auto& phase : HookPhases())
    for (const auto& cls : plan->classes) {
      auto h = space.hooks.find(cls);
      if (h == space.hooks.end()) continue;
      for (const auto& hk : h->second)
        if (hk.phase == phase) {
          plan->hooks.push_back({hk.phase, hk.cls, hk.file, hk.content, hk.sha256, hk.utf8});
          if (explain)
            plan->explain.push_back(
                {"hook", hk.file, "runs", "before " + phase, cls, {hk.file, 0, 0}, {}, {}, {}});
        }
    }
  return true;
}

}  // namespace kiln::classes
