#include "agent/facts.h"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::agent {
namespace fs = std::filesystem;
namespace {

std::string ReadTrim(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? std::string(Trim(*r)) : std::string();
}

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
  std::string model, vendor;
  std::set<std::string> sockets;
  std::map<std::string, uint64_t> cores_per_socket;
  std::vector<std::string> flags;
  uint64_t threads = 0;
  std::string socket = "0";
  if (text.ok()) {
    for (const auto& line : Split(*text, '\n')) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key(Trim(std::string_view(line).substr(0, colon)));
      std::string val(Trim(std::string_view(line).substr(colon + 1)));
      if (key == "processor")
        ++threads;
      else if (key == "model name" && model.empty())
        model = val;
      else if (key == "vendor_id" && vendor.empty())
        vendor = val;
      else if (key == "physical id")
        sockets.insert(socket = val);
      else if (key == "cpu cores")
        cores_per_socket[socket] = ParseUint(val).value_or(0);
      else if (key == "flags" && flags.empty())
        for (auto& f : Split(val, ' '))
          if (!f.empty()) flags.push_back(std::move(f));
    }
  }
  utsname u{};
  ::uname(&u);
  Json cpu = {{"arch", u.machine}, {"threads", threads}, {"flags", flags}};
  if (!model.empty()) cpu["model"] = model;
  if (!vendor.empty()) cpu["vendor"] = vendor;
  uint64_t cores = 0;
  for (const auto& [_, n] : cores_per_socket) cores += n;
  cpu["sockets"] = sockets.empty() ? 1 : sockets.size();
  cpu["cores"] = cores ? cores : threads;
  return cpu;
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
  return Json::object();
}

bool IsInstallDisk(const std::string& name) {
  for (const char* skip : {"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"})
    if (StartsWith(name, skip)) return false;
  return true;
}

// sata, nvme, virtio, usb or scsi, from where the device sits in /sys.
std::string Transport(const std::string& block_entry) {
  std::error_code ec;
  std::string target = fs::read_symlink(block_entry, ec).string();
  if (target.find("/nvme") != std::string::npos) return "nvme";
  if (target.find("/virtio") != std::string::npos) return "virtio";
  if (target.find("/usb") != std::string::npos) return "usb";
  if (target.find("/ata") != std::string::npos) return "sata";
  return "scsi";
}

Json Disks(const FactsSources& src) {
  Json disks = Json::array();
  std::string block = src.sys + "/block";
  for (const auto& name : SortedEntries(block)) {
    std::string d = block + "/" + name;
    if (!IsInstallDisk(name) || IsVirtualDevice(d)) continue;
    auto sectors = ParseUint(ReadTrim(d + "/size"));
    if (!sectors) continue;  // not a disk we can size: not one to install on
    Json disk = {{"name", name},
                 {"path", "/dev/" + name},
                 {"size_bytes", *sectors * 512},
                 {"rotational", ReadTrim(d + "/queue/rotational") == "1"},
                 {"removable", ReadTrim(d + "/removable") == "1"},
                 {"transport", Transport(d)}};
    std::string model = ReadTrim(d + "/device/model");
    std::string serial = ReadTrim(d + "/device/serial");
    if (serial.empty()) serial = ReadTrim(d + "/serial");  // virtio-blk
    if (serial.empty()) serial = ReadTrim(d + "/device/wwid");
    if (!model.empty()) disk["model"] = model;
    if (!serial.empty()) disk["serial"] = serial;
    disks.push_back(std::move(disk));
  }
  return disks;
}

Json Nics(const FactsSources& src) {
  Json nics = Json::array();
  std::string net = src.sys + "/class/net";
  for (const auto& name : SortedEntries(net)) {
    std::string d = net + "/" + name;
    if (name == "lo" || IsVirtualDevice(d)) continue;
    std::string mac = ToLower(ReadTrim(d + "/address"));
    if (mac.size() != 17) continue;  // not Ethernet (InfiniBand, ...)
    Json nic = {{"name", name}, {"mac", mac}, {"link", ReadTrim(d + "/carrier") == "1"}};
    std::string driver = LinkBase(d + "/device/driver");
    if (!driver.empty()) nic["driver"] = driver;
    auto speed = ParseInt(ReadTrim(d + "/speed"));
    if (speed && *speed > 0) nic["speed_mbps"] = *speed;
    nics.push_back(std::move(nic));
  }
  return nics;
}

// SMBIOS chassis types (DMTF DSP0134 7.4.1), the ones servers report.
std::string ChassisName(const std::string& number) {
  static const std::map<std::string, std::string> names = {{"1", "Other"},
                                                           {"2", "Unknown"},
                                                           {"3", "Desktop"},
                                                           {"4", "Low Profile Desktop"},
                                                           {"6", "Mini Tower"},
                                                           {"7", "Tower"},
                                                           {"9", "Laptop"},
                                                           {"10", "Notebook"},
                                                           {"13", "All in One"},
                                                           {"17", "Main Server Chassis"},
                                                           {"23", "Rack Mount Chassis"},
                                                           {"24", "Sealed-case PC"},
                                                           {"25", "Multi-system chassis"},
                                                           {"28", "Blade"},
                                                           {"29", "Blade Enclosure"},
                                                           {"35", "Mini PC"},
                                                           {"36", "Stick PC"}};
  auto it = names.find(number);
  return it == names.end() ? number : it->second;
}

Json Dmi(const FactsSources& src) {
  std::string d = src.sys + "/class/dmi/id/";
  Json dmi = Json::object();
  for (const char* key :
       {"sys_vendor", "product_name", "product_serial", "product_uuid", "board_vendor",
        "board_name", "bios_vendor", "bios_version", "chassis_asset_tag"}) {
    std::string v = ReadTrim(d + key);
    if (!v.empty()) dmi[key] = key == std::string("product_uuid") ? ToLower(v) : v;
  }
  std::string chassis = ReadTrim(d + "chassis_type");
  if (!chassis.empty()) dmi["chassis_type"] = ChassisName(chassis);
  return dmi;
}

Json Pci(const FactsSources& src) {
  Json pci = Json::array();
  std::string bus = src.sys + "/bus/pci/devices";
  for (const auto& slot : SortedEntries(bus)) {
    std::string d = bus + "/" + slot;
    // As lspci -n prints them: "8086", "10fb", class "0200" (base+sub).
    auto hex = [&](const char* file, size_t digits) {
      std::string v = ToLower(ReadTrim(d + "/" + file));
      if (StartsWith(v, "0x")) v = v.substr(2);
      return v.substr(0, digits);
    };
    Json dev = {{"slot", slot},
                {"vendor", hex("vendor", 4)},
                {"device", hex("device", 4)},
                {"class", hex("class", 4)}};
    std::string driver = LinkBase(d + "/driver");
    if (!driver.empty()) dev["driver"] = driver;
    pci.push_back(std::move(dev));
  }
  return pci;
}

Json Firmware(const FactsSources& src) {
  std::error_code ec;
  if (!fs::exists(src.sys + "/firmware/efi", ec)) return {{"type", "bios"}};
  // SecureBoot-<EFI global variable GUID>: 4 attribute bytes, then the value.
  auto sb =
      ReadFile(src.sys + "/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c");
  bool secure = sb.ok() && sb->size() >= 5 && (*sb)[4] == 1;
  return {{"type", "uefi"}, {"secure_boot", secure}};
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
  return {{"schema", 1},       {"hostname", host},      {"firmware", Firmware(src)},
          {"cpu", Cpu(src)},   {"memory", Memory(src)}, {"disks", Disks(src)},
          {"nics", Nics(src)}, {"dmi", Dmi(src)},       {"pci", Pci(src)}};
}

Result<Json> LoadFactsFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(text, path));
  if (!j.is_object()) return InvalidArgument(path + ": facts must be a JSON object");
  using V = Json::value_t;
  for (auto [key, type, what] :
       {std::tuple{"hostname", V::string, "a string"},
        std::tuple{"firmware", V::object, "an object"}, std::tuple{"cpu", V::object, "an object"},
        std::tuple{"memory", V::object, "an object"}, std::tuple{"dmi", V::object, "an object"},
        std::tuple{"disks", V::array, "an array"}, std::tuple{"nics", V::array, "an array"},
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
