#include "server/coord/embedded/txn.h"

#include <fmt/format.h>

#include "server/coord/embedded/coding.h"

namespace kiln::coord::embedded {

size_t Txn::DataBytes() const {
  size_t n = 0;
  for (const auto& op : ops) n += op.path.size() + (op.data ? op.data->size() : 0);
  return n;
}

void EncodeTxn(const Txn& txn, std::string* out) {
  using namespace wal;
  PutFixed64(out, static_cast<uint64_t>(txn.zxid));
  PutFixed64(out, static_cast<uint64_t>(txn.time_ms));
  PutFixed32(out, static_cast<uint32_t>(txn.ops.size()));
  for (const auto& op : txn.ops) {
    out->push_back(static_cast<char>(op.kind));
    switch (op.kind) {
      case TxnOpKind::kCreate:
        PutBytes(out, op.path);
        PutFixed64(out, static_cast<uint64_t>(op.session));
        PutBytes(out, *op.data);
        break;
      case TxnOpKind::kSet:
        PutBytes(out, op.path);
        PutFixed32(out, static_cast<uint32_t>(op.version));
        PutBytes(out, *op.data);
        break;
      case TxnOpKind::kDelete:
        PutBytes(out, op.path);
        break;
      case TxnOpKind::kCreateSession:
        PutFixed64(out, static_cast<uint64_t>(op.session));
        PutFixed64(out, static_cast<uint64_t>(op.timeout_ms));
        break;
      case TxnOpKind::kCloseSession:
        PutFixed64(out, static_cast<uint64_t>(op.session));
        break;
    }
  }
}

Result<Txn> DecodeTxn(std::string_view payload) {
  wal::Decoder d(payload);
  Txn txn;
  txn.zxid = d.I64();
  txn.time_ms = d.I64();
  uint32_t n = d.U32();
  if (d.failed()) return Corruption("transaction record shorter than its header");
  // Each op takes at least 5 bytes; a larger count is garbage, not a reason
  // to reserve gigabytes.
  if (n > payload.size() / 5) return Corruption(fmt::format("transaction claims {} operations", n));
  txn.ops.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    TxnOp op;
    uint8_t kind = d.U8();
    op.kind = static_cast<TxnOpKind>(kind);
    switch (op.kind) {
      case TxnOpKind::kCreate:
        op.path = d.Bytes();
        op.session = d.I64();
        op.data = std::make_shared<const std::string>(d.Bytes());
        break;
      case TxnOpKind::kSet:
        op.path = d.Bytes();
        op.version = d.I32();
        op.data = std::make_shared<const std::string>(d.Bytes());
        break;
      case TxnOpKind::kDelete:
        op.path = d.Bytes();
        break;
      case TxnOpKind::kCreateSession:
        op.session = d.I64();
        op.timeout_ms = d.I64();
        break;
      case TxnOpKind::kCloseSession:
        op.session = d.I64();
        break;
      default:
        return Corruption(fmt::format("transaction {} op {}: unknown kind {}", txn.zxid, i, kind));
    }
    if (d.failed()) return Corruption(fmt::format("transaction {} op {} is truncated", txn.zxid, i));
    txn.ops.push_back(std::move(op));
  }
  if (!d.done()) return Corruption(fmt::format("transaction {} has trailing bytes", txn.zxid));
  if (txn.zxid <= 0) return Corruption(fmt::format("transaction has zxid {}", txn.zxid));
  return txn;
}

}  // namespace kiln::coord::embedded
