#pragma once
// The live watch streams of the embedded store and which changes each one
// sees. Subscriptions are indexed by path, so a change at /a/b/c looks up
// only its own path and its ancestors, however many streams there are.
//
// Thread safety: none inside. EmbeddedStore calls everything with its tree
// lock held exclusively, so Publish never races with Add or Remove.
// Remove may be called from inside a handler that Publish runs (a stream
// destroyed from its own callback): the entry is marked dead and skipped.

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/coord/coord_store.h"

namespace kiln::coord::embedded {

struct StreamSub {
  std::string path;
  bool recursive = true;
  StreamHandlers handlers;
  std::atomic<Zxid> position{0};  // last zxid delivered
  bool dead = false;
};

class StreamHub {
 public:
  void Add(const std::shared_ptr<StreamSub>& sub);
  void Remove(StreamSub* sub);
  // Hands each change to every live stream whose scope holds it, in order.
  void Publish(const std::vector<ChangePtr>& changes);
  // Ends every stream (on_end(status)) and forgets them.
  void EndAll(const Status& status);
  size_t size() const { return count_; }

  // Whether a stream over (path, recursive) sees a change at change_path.
  static bool InScope(const std::string& path, bool recursive, const std::string& change_path);

 private:
  void Deliver(std::vector<std::shared_ptr<StreamSub>>& subs, const ChangePtr& c);
  void Sweep();

  std::unordered_map<std::string, std::vector<std::shared_ptr<StreamSub>>> recursive_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<StreamSub>>> flat_;
  size_t count_ = 0;
  bool publishing_ = false;
  bool need_sweep_ = false;
};

}  // namespace kiln::coord::embedded
