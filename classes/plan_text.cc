#include "classes/plan_text.h"

#include <fmt/format.h>

#include <map>

#include "common/strings.h"

namespace kiln::classes {
namespace {

std::string S(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

uint64_t U(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

const Json& G(const Json& j, const char* key) {
  static const Json null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

std::string Short(const Json& v, size_t max = 60) {
  std::string s = v.dump();
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string Header(const Json& p) {
  std::string out = fmt::format("Plan for {}", S(p["node"], "id"));
  if (S(p["node"], "hostname") != S(p["node"], "id"))
    out += " (hostname " + S(p["node"], "hostname") + ")";
  out += fmt::format(" from config space {} (digest {})\n", S(p["space"], "dir"),
                     S(p["space"], "digest").substr(0, 12));
  return out;
}

void Disks(const Json& p, std::string& out, bool sources) {
  if (p["disks"].empty()) {
    out += "\nDisks: none (no class has a disk layout)\n";
    return;
  }
  out += "\nDisks:\n";
  for (const auto& d : p["disks"]) {
    out += fmt::format(
        "  {} -> {} ({}, {}){}\n", S(d, "role"), S(d, "device"), HumanBytes(U(d, "size_bytes")),
        S(d, "table"),
        sources ? fmt::format(", layout of {} from {}", S(d, "class"), S(d, "source")) : "");
    for (const auto& part : d["partitions"]) {
      std::string fs = S(part, "fs").empty() ? S(part, "type") : S(part, "fs");
      std::string line = fmt::format("    {:<16} {:>10}  {:<5} {:<22}{}", S(part, "device"),
                                     HumanBytes(U(part, "size_bytes")), fs, S(part, "mount"),
                                     sources ? S(part, "source") : "");
      out += std::string(Trim(line).empty() ? "" : line.substr(0, line.find_last_not_of(' ') + 1)) +
             "\n";
    }
    if (U(d, "unallocated_bytes") > 0)
      out += fmt::format("    ({} left unallocated)\n", HumanBytes(U(d, "unallocated_bytes")));
  }
}

}  // namespace

std::string RenderPlanText(const Json& p) {
  std::string out = Header(p);
  std::string classes;
  for (const auto& c : p["classes"]) classes += (classes.empty() ? "" : " ") + c.get<std::string>();
  out += "\nClasses: " + classes + "\n";
  out += "Image:   " +
         (p["image"].is_null() ? std::string("none (no class sets IMAGE)") : S(p["image"], "ref")) +
         "\n";
  Disks(p, out, false);
  out += "\nFiles:\n";
  if (p["files"].empty()) out += "  none\n";
  for (const auto& f : p["files"])
    out += fmt::format("  {:<44} {} {}:{} from {}\n", S(f, "path"), S(f, "mode"), S(f, "owner"),
                       S(f, "group"), S(f, "class"));
  out += "\nScripts:\n";
  if (p["scripts"].empty()) out += "  none\n";
  for (const auto& s : p["scripts"]) out += "  " + S(s, "source") + "\n";
  if (!p["hooks"].empty()) {
    out += "\nHooks:\n";
    for (const auto& h : p["hooks"])
      out += fmt::format("  before {:<10} {}\n", S(h, "phase"), S(h, "source"));
  }
  out += "\nVariables:\n";
  for (const auto& [k, v] : p["variables"].items())
    out += fmt::format("  {} = {}\n", k, Short(v, 70));
  return out;
}

std::string RenderExplainText(const Json& p) {
  std::string out = Header(p);
  if (!p.contains("explain")) return out + "(this plan carries no explanation)\n";
  const Json& ex = p["explain"];

  out += "\nClasses (each later class wins over the earlier ones):\n";
  for (const auto& d : ex) {
    if (S(d, "what") != "class") continue;
    std::string who;
    if (!S(d, "source").empty()) who = S(d, "source");
    std::string line = S(d, "line");
    std::string note = S(d, "note");
    std::string action = S(d, "action");
    std::string text = fmt::format("  {:<8} {:<9}", action, S(d, "subject"));
    if (!who.empty()) text += " by " + who;
    if (!line.empty()) text += ": " + line;
    if (!note.empty()) text += (who.empty() ? " " : " (") + note + (who.empty() ? "" : ")");
    out += text + "\n";
  }
  std::string final_classes;
  for (const auto& c : p["classes"])
    final_classes += (final_classes.empty() ? "" : " ") + c.get<std::string>();
  out += "  => " + final_classes + "\n";

  bool printed = false;
  for (const auto& d : ex) {
    if (S(d, "what") != "output") continue;
    if (!printed) out += "\nOutput of rules and variable files:\n";
    printed = true;
    out += fmt::format("  {}: {}\n", S(d, "source"), S(d, "value"));
  }

  out += "\nVariables (in the order the classes set them):\n";
  for (const auto& d : ex) {
    if (S(d, "what") != "variable") continue;
    std::string text = fmt::format(
        "  {} {} {} by {} at {}", S(d, "subject"), S(d, "action") == "unset" ? "unset" : "=",
        S(d, "action") == "unset" ? "" : Short(G(d, "value")), S(d, "class"), S(d, "source"));
    if (d.contains("overrode"))
      for (const auto& o : d["overrode"])
        text += fmt::format(", overriding {} from {} at {}", Short(G(o, "value"), 40),
                            S(o, "class"), S(o, "source"));
    out += text + "\n";
  }

  out += "\nImage: ";
  bool image = false;
  for (const auto& d : ex) {
    if (S(d, "what") != "image") continue;
    image = true;
    out += fmt::format("{} chosen by {} at {}", S(d, "value"), S(d, "class"), S(d, "source"));
    if (d.contains("overrode"))
      for (const auto& o : d["overrode"])
        out += fmt::format(", overriding {} from {}", Short(G(o, "value"), 40), S(o, "class"));
    out += "\n";
  }
  if (!image) out += "none (no class sets IMAGE)\n";

  Disks(p, out, true);
  for (const auto& d : ex)
    if (S(d, "what") == "disk" && d.contains("overrode"))
      for (const auto& o : d["overrode"])
        out += fmt::format("  disk {}: {}'s layout overrides {}'s at {}\n", S(d, "subject"),
                           S(d, "class"), S(o, "class"), S(o, "source"));

  out += "\nFiles (the highest class that has one wins):\n";
  bool any = false;
  for (const auto& d : ex) {
    if (S(d, "what") != "file") continue;
    any = true;
    std::string text =
        fmt::format("  {} from {}: {}", S(d, "subject"), S(d, "class"), S(d, "value"));
    if (d.contains("overrode")) {
      std::string over;
      for (const auto& o : d["overrode"]) over += (over.empty() ? "" : ", ") + S(o, "class");
      text += "; overrides " + over;
    }
    out += text + "\n";
  }
  if (!any) out += "  none\n";

  out += "\nScripts (class order, then name order):\n";
  any = false;
  for (const auto& d : ex)
    if (S(d, "what") == "script") {
      any = true;
      out +=
          fmt::format("  {}. {} ({})\n", S(d, "value").substr(5), S(d, "subject"), S(d, "class"));
    }
  if (!any) out += "  none\n";
  any = false;
  for (const auto& d : ex)
    if (S(d, "what") == "hook") {
      if (!any) out += "\nHooks:\n";
      any = true;
      out += fmt::format("  {} {} ({})\n", S(d, "value"), S(d, "subject"), S(d, "class"));
    }
  return out;
}

}  // namespace kiln::classes
