#pragma once
// The node record a plan is resolved for, and the facts schema the agent
// reports (docs/CLASSES.md "Facts"). The node inventory stores records in
// this shape at /kiln/nodes/<id>; `kiln plan --facts FILE` builds one from a
// facts file.

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace kiln::classes {

inline constexpr int kFactsSchema = 1;

struct NodeRecord {
  std::string id;                    // inventory id; also the default hostname
  std::string hostname;              // short hostname, a DNS label
  std::vector<std::string> macs;     // lower-case aa:bb:cc:dd:ee:ff
  Json facts = Json::object();       // as the agent reported them
  std::vector<std::string> classes;  // explicit classes from the operator
};

// {"id", "hostname", "macs", "facts", "classes"}: id is required, hostname
// defaults to id, macs default to the MACs of facts.nics. Errors name the
// field ("node record: field \"macs\" ...").
Result<NodeRecord> NodeFromJson(const Json& j);
Json NodeToJson(const NodeRecord& n);

// Checks the fields of the facts schema that kiln reads (disks, nics, pci,
// memory, cpu, dmi, firmware): each error names its JSON path,
// "facts.disks[1].size_bytes: expected an unsigned integer, got string".
// Unknown fields are allowed: the agent may report more.
Status ValidateFacts(const Json& facts);

// One disk from facts.disks, as layout resolution sees it.
struct FactDisk {
  std::string name;  // "sda", "nvme0n1"
  std::string path;  // "/dev/sda" (default /dev/<name>)
  uint64_t size_bytes = 0;
  bool rotational = false;
  bool removable = false;
  std::string transport;  // sata, sas, nvme, virtio, usb, scsi, ...
  std::string model;
  std::string serial;
};

// The disks of validated facts, in the order the agent reported them.
std::vector<FactDisk> DisksOf(const Json& facts);

// Normalises a MAC ("52-54-00-AB-CD-EF" -> "52:54:00:ab:cd:ef"); "" if invalid.
std::string NormalizeMac(std::string_view mac);

}  // namespace kiln::classes
