#pragma once
// A transaction: one update of the embedded store, as the log records it.
//
// Transactions are resolved: the preparer has already checked versions and
// parents, appended sequence numbers and listed the ephemeral znodes a
// closing session takes with it, so replaying a transaction needs no
// decisions and always gives the same tree (and the same watch stream
// changes) as applying it did.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/coord/coord_types.h"

namespace kiln::coord::embedded {

// On disk: never renumber.
enum class TxnOpKind : uint8_t {
  kCreate = 1,
  kSet = 2,
  kDelete = 3,
  kCreateSession = 4,
  kCloseSession = 5,
};

struct TxnOp {
  TxnOpKind kind = TxnOpKind::kCreate;
  std::string path;                         // znode ops
  std::shared_ptr<const std::string> data;  // create, set (never null there)
  SessionId session = 0;  // create: ephemeral owner (0: persistent); session ops: the id
  int32_t version = 0;    // set: the data version after the set
  int64_t timeout_ms = 0; // create session
};

struct Txn {
  Zxid zxid = 0;
  int64_t time_ms = 0;
  std::vector<TxnOp> ops;

  // Bytes of znode data the transaction carries (for retention limits).
  size_t DataBytes() const;
};

// Appends the transaction's record payload to out.
void EncodeTxn(const Txn& txn, std::string* out);
// Parses a payload; kCorruption describing what is malformed.
Result<Txn> DecodeTxn(std::string_view payload);

}  // namespace kiln::coord::embedded
