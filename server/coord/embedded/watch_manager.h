#pragma once
// ZooKeeper's one-shot watches for the embedded store: data watches (from
// Get and Exists) and child watches (from Children), by path. A watch fires
// once and is forgotten.
//
// Thread safety: Add* may be called from many reader threads at once (they
// hold the tree lock shared), so the tables have their own mutex. Fire runs
// on the commit thread with the tree lock held exclusively, which is what
// makes "register with the read" atomic: no update can fall between a read
// and its watch.

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/coord/coord_types.h"
#include "server/coord/embedded/txn.h"

namespace kiln::coord::embedded {

using FiredWatch = std::pair<Watcher, WatchEvent>;

class WatchManager {
 public:
  void AddData(const std::string& path, Watcher w);
  void AddChild(const std::string& path, Watcher w);
  // Removes and returns the watches a transaction fires, with their events.
  void Collect(const Txn& txn, std::vector<FiredWatch>* out);
  // Removes every watch, each with a kNotWatching event (shutdown).
  void CollectAll(std::vector<FiredWatch>* out);
  size_t size() const;

 private:
  void Take(std::unordered_map<std::string, std::vector<Watcher>>& table, const std::string& path,
            EventType type, Zxid zxid, std::vector<FiredWatch>* out);

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<Watcher>> data_;
  std::unordered_map<std::string, std::vector<Watcher>> child_;
  size_t count_ = 0;
};

}  // namespace kiln::coord::embedded
