#pragma once
// The retained changes that watch streams resume from: the newest changes
// in zxid order, bounded by count and by data bytes. Trimming drops whole
// zxids (a multi's changes stay together), so "resume after zxid Z" is
// well defined for every Z >= trimmed_through().
//
// Thread safety: none inside; EmbeddedStore appends under its tree lock
// held exclusively and reads under it shared.

#include <cstddef>
#include <deque>
#include <vector>

#include "server/coord/coord_types.h"
#include "server/coord/embedded/txn.h"

namespace kiln::coord::embedded {

class ChangeLog {
 public:
  ChangeLog(size_t max_changes, size_t max_bytes)
      : max_changes_(max_changes), max_bytes_(max_bytes) {}

  void Append(const std::vector<ChangePtr>& changes);
  // Changes with zxid > since, oldest first, at most max (but never
  // splitting a zxid). REQUIRES since >= trimmed_through().
  std::vector<ChangePtr> After(Zxid since, size_t max) const;

  // Every change after this zxid is retained.
  Zxid trimmed_through() const { return trimmed_through_; }
  // For recovery: changes up to zxid are known to be gone.
  void SetTrimmedThrough(Zxid zxid) { trimmed_through_ = zxid; }

  size_t size() const { return changes_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  void Trim();

  size_t max_changes_;
  size_t max_bytes_;
  std::deque<ChangePtr> changes_;
  size_t bytes_ = 0;
  Zxid trimmed_through_ = 0;
};

// The changes a transaction makes, as streams see them (DataTree::Apply
// produces the same list).
void ChangesOf(const Txn& txn, std::vector<ChangePtr>* out);

}  // namespace kiln::coord::embedded
