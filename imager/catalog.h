#pragma once
// Image records: which versions an image has, which is current, its tags.
//
// A version is immutable once added: its number and manifest digest never
// change, and numbers are never reused (even after gc drops a version).
// Rollback and tags only move pointers. The record is small JSON, the same
// document whichever backend holds it:
//
//   {"name":"web","current":2,"next":3,
//    "versions":[{"version":1,"manifest":"ab..","created":1764121000,
//                 "note":"","source":"dir:/srv/golden","entries":6768,"bytes":206000000}, ...],
//    "tags":{"prod":1}}
//
// ImageCatalog is the seam between the image store and where records live:
// `kiln serve` keeps them in the coordination store at /kiln/images/<name>
// (server/coord_image_catalog.h, which imager/ does not depend on);
// FileCatalog keeps one file per image in a directory, for tools and tests
// that run without a server.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace kiln::imager {

struct VersionRecord {
  int version = 0;
  std::string manifest;  // hex digest
  int64_t created = 0;   // unix seconds
  std::string note;
  std::string source;  // "dir:/path", "tar:/path", "host:name"
  uint64_t entries = 0;
  uint64_t bytes = 0;  // file content bytes
};

struct ImageRecord {
  std::string name;
  std::vector<VersionRecord> versions;  // ascending by version
  int current = 0;                      // 0: none
  int next = 1;                         // the number the next capture gets
  std::map<std::string, int> tags;

  const VersionRecord* Find(int version) const;
};

Json ImageRecordToJson(const ImageRecord& r);
Result<ImageRecord> ImageRecordFromJson(const Json& j);

// Image names: 1-64 of [a-z0-9._-], starting with a letter or digit.
Status ValidateImageName(std::string_view name);
// Tags: the same alphabet, and not all digits (those are version numbers).
Status ValidateTagName(std::string_view tag);

class ImageCatalog {
 public:
  virtual ~ImageCatalog() = default;
  virtual Result<std::vector<std::string>> List() = 0;
  // kNotFound naming the image when it has no record.
  virtual Result<ImageRecord> Get(const std::string& name) = 0;
  // Read-modify-write, atomic with respect to other Updates: `fn` gets the
  // current record (a fresh one with `exists` false when there is none) and
  // changes it; a non-OK status from fn aborts without writing. Returns the
  // record as stored.
  using Mutator = std::function<Status(ImageRecord& record, bool exists)>;
  virtual Result<ImageRecord> Update(const std::string& name, const Mutator& fn) = 0;
};

// One JSON file per image, written atomically (temp, fsync, rename); a
// mutex serialises updates within the process, which is the only writer
// (the server holds the data directory lock).
class FileCatalog : public ImageCatalog {
 public:
  static Result<std::unique_ptr<FileCatalog>> Open(const std::string& dir);
  Result<std::vector<std::string>> List() override;
  Result<ImageRecord> Get(const std::string& name) override;
  Result<ImageRecord> Update(const std::string& name, const Mutator& fn) override;

 private:
  explicit FileCatalog(std::string dir) : dir_(std::move(dir)) {}
  Result<ImageRecord> Load(const std::string& name);
  std::string dir_;
  std::mutex mu_;
};

}  // namespace kiln::imager
