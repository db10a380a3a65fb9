#include "agent/facts.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::agent {
namespace fs = std::filesystem;
namespace {

std::string ReadTrim(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? std::string(Trim(*r)) : std::string();
}

Json StrOrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string LinkBase(const std::string& path) {
  std::error_code ec;
  fs::path target = fs::read_symlink(path, ec);
  return ec ? std::string() : target.filename().string();
}

bool IsVirtualDevice(const std::string& class_entry) {
  std::error_code ec;
  fs::path target = fs::read_symlink(class_entry, ec);
  return !ec && target.string().find("/virtual/") != std::string::npos;
}

std::vector<std::string> SortedEntries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

Json Cpu(const FactsSources& src) {
  auto text = ReadFile(src.proc + "/cpuinfo");
  std::string model;
  int count = 0;
  if (text.ok()) {
    for (const auto& line : Split(*text, '\n')) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string_view key = Trim(std::string_view(line).substr(0, colon));
      std::string_view val = Trim(std::string_view(line).substr(colon + 1));
      if (key == "processor") ++count;
      if (key == "model name" && model.empty()) model = std::string(val);
    }
  }
  return {{"model", StrOrNull(model)}, {"count", count}};
}

Json Memory(const FactsSources& src) {
  auto text = ReadFile(src.proc + "/meminfo");
  if (text.ok()) {
    for (const auto& line : Split(*text, '\n')) {
      if (!StartsWith(line, "MemTotal:")) continue;
      auto parts = Split(std::string(Trim(line.substr(9))), ' ');
      if (auto kb = ParseUint(parts[0])) return {{"total_bytes", *kb * 1024}};
    }
  }
  return {{"total_bytes", nullptr}};
}

bool IsInstallDisk(const std::string& name) {
  for (const char* skip : {"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"})
    if (StartsWith(name, skip)) return false;
  return true;
}

Json Disks(const FactsSources& src) {
  Json disks = Json::array();
  std::string block = src.sys + "/block";
  for (const auto& name : SortedEntries(block)) {
    std::string d = block + "/" + name;
    if (!IsInstallDisk(name) || IsVirtualDevice(d)) continue;
    auto sectors = ParseUint(ReadTrim(d + "/size"));
    std::string model = ReadTrim(d + "/device/model");
    std::string serial = ReadTrim(d + "/device/serial");
    if (serial.empty()) serial = ReadTrim(d + "/serial");  // virtio-blk
    if (serial.empty()) serial = ReadTrim(d + "/device/wwid");
    std::string rot = ReadTrim(d + "/queue/rotational");
    disks.push_back({{"name", name},
                     {"path", "/dev/" + name},
                     {"size_bytes", sectors ? Json(*sectors * 512) : Json(nullptr)},
                     {"model", StrOrNull(model)},
                     {"serial", StrOrNull(serial)},
                     {"rotational", rot.empty() ? Json(nullptr) : Json(rot == "1")},
                     {"removable", ReadTrim(d + "/removable") == "1"}});
  }
  return disks;
}

Json Nics(const FactsSources& src) {
  Json nics = Json::array();
  std::string net = src.sys + "/class/net";
  for (const auto& name : SortedEntries(net)) {
    std::string d = net + "/" + name;
    if (name == "lo" || IsVirtualDevice(d)) continue;
    auto speed = ParseInt(ReadTrim(d + "/speed"));
    std::string carrier = ReadTrim(d + "/carrier");
    nics.push_back({{"name", name},
                    {"mac", ToLower(ReadTrim(d + "/address"))},
                    {"driver", StrOrNull(LinkBase(d + "/device/driver"))},
                    {"link", carrier == "1"},
                    {"speed_mbps", speed && *speed > 0 ? Json(*speed) : Json(nullptr)}});
  }
  return nics;
}

Json Dmi(const FactsSources& src) {
  std::string d = src.sys + "/class/dmi/id/";
  return {{"vendor", StrOrNull(ReadTrim(d + "sys_vendor"))},
          {"product", StrOrNull(ReadTrim(d + "product_name"))},
          {"serial", StrOrNull(ReadTrim(d + "product_serial"))},
          {"uuid", StrOrNull(ToLower(ReadTrim(d + "product_uuid")))},
          {"bios_vendor", StrOrNull(ReadTrim(d + "bios_vendor"))},
          {"bios_version", StrOrNull(ReadTrim(d + "bios_version"))}};
}

Json Pci(const FactsSources& src) {
  Json pci = Json::array();
  std::string bus = src.sys + "/bus/pci/devices";
  for (const auto& slot : SortedEntries(bus)) {
    std::string d = bus + "/" + slot;
    pci.push_back({{"slot", slot},
                   {"vendor", ReadTrim(d + "/vendor")},
                   {"device", ReadTrim(d + "/device")},
                   {"class", ReadTrim(d + "/class")},
                   {"subsystem_vendor", StrOrNull(ReadTrim(d + "/subsystem_vendor"))},
                   {"subsystem_device", StrOrNull(ReadTrim(d + "/subsystem_device"))},
                   {"driver", StrOrNull(LinkBase(d + "/driver"))}});
  }
  return pci;
}

Status CheckType(const Json& j, const char* key, Json::value_t want, const char* what) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  if (j[key].type() != want)
    return InvalidArgument(fmt::format("\"{}\" must be {}, not {}", key, what, j[key].type_name()));
  return Status::Ok();
}

}  // namespace

Json CollectFacts(const FactsSources& src) {
  std::string host = src.hostname;
  if (host.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) host = buf;
  }
  utsname u{};
  ::uname(&u);
  std::error_code ec;
  bool uefi = fs::exists(src.sys + "/firmware/efi", ec);
  return {{"hostname", host},   {"arch", u.machine},   {"firmware", uefi ? "uefi" : "bios"},
          {"cpu", Cpu(src)},    {"memory", Memory(src)}, {"disks", Disks(src)},
          {"nics", Nics(src)},  {"dmi", Dmi(src)},     {"pci", Pci(src)}};
}

Result<Json> LoadFactsFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(text, path));
  if (!j.is_object()) return InvalidArgument(path + ": facts must be a JSON object");
  using V = Json::value_t;
  for (auto [key, type, what] : {std::tuple{"hostname", V::string, "a string"},
                                 std::tuple{"firmware", V::string, "a string"},
                                 std::tuple{"cpu", V::object, "an object"},
                                 std::tuple{"memory", V::object, "an object"},
                                 std::tuple{"dmi", V::object, "an object"},
                                 std::tuple{"disks", V::array, "an array"},
                                 std::tuple{"nics", V::array, "an array"},
                                 std::tuple{"pci", V::array, "an array"}}) {
    Status s = CheckType(j, key, type, what);
    if (!s.ok()) return s.WithContext(path);
  }
  return j;
}

std::vector<std::string> FactMacs(const Json& facts) {
  std::vector<std::string> macs;
  if (!facts.contains("nics") || !facts["nics"].is_array()) return macs;
  for (const auto& n : facts["nics"])
    if (n.is_object() && n.contains("mac") && n["mac"].is_string())
      macs.push_back(ToLower(n["mac"].get<std::string>()));
  return macs;
}

}  // namespace kiln::agent
