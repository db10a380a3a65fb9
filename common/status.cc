#include "common/status.h"

#include <array>
#include <cstring>

namespace kiln {
namespace {

struct CodeEntry {
  Code code;
  std::string_view name;
};

constexpr std::array kCodes = {
    CodeEntry{Code::kOk, "ok"},
    CodeEntry{Code::kInvalidArgument, "invalid_argument"},
    CodeEntry{Code::kNotFound, "not_found"},
    CodeEntry{Code::kAlreadyExists, "already_exists"},
    CodeEntry{Code::kBadVersion, "bad_version"},
    CodeEntry{Code::kNotEmpty, "not_empty"},
    CodeEntry{Code::kNoChildrenForEphemerals, "no_children_for_ephemerals"},
    CodeEntry{Code::kTooLarge, "too_large"},
    CodeEntry{Code::kUnauthenticated, "unauthenticated"},
    CodeEntry{Code::kPermissionDenied, "permission_denied"},
    CodeEntry{Code::kFailedPrecondition, "failed_precondition"},
    CodeEntry{Code::kCompacted, "compacted"},
    CodeEntry{Code::kSessionExpired, "session_expired"},
    CodeEntry{Code::kIoError, "io_error"},
    CodeEntry{Code::kCorruption, "corruption"},
    CodeEntry{Code::kUnavailable, "unavailable"},
    CodeEntry{Code::kTimeout, "timeout"},
    CodeEntry{Code::kCancelled, "cancelled"},
    CodeEntry{Code::kInternal, "internal"},
};

}  // namespace

std::string_view CodeName(Code code) {
  for (const auto& e : kCodes)
    if (e.code == code) return e.name;
  return "internal";
}

Code CodeFromName(std::string_view name) {
  for (const auto& e : kCodes)
    if (e.name == name) return e.code;
  return Code::kInternal;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return {code_, std::move(m)};
}

Status ErrnoError(std::string_view what, int errno_value) {
  std::string m(what);
  m += ": ";
  m += std::strerror(errno_value);
  Code code = Code::kIoError;
  if (errno_value == ENOENT) code = Code::kNotFound;
  if (errno_value == EACCES || errno_value == EPERM) code = Code::kPermissionDenied;
  if (errno_value == EEXIST) code = Code::kAlreadyExists;
  return {code, std::move(m)};
}

}  // namespace kiln
