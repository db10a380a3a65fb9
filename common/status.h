#pragma once
// Status and Result<T>: kiln's one error convention at every module boundary.
//
// A Status is a code plus a message that names what was wrong and where
// ("wal 000001.log offset 4096: crc mismatch"). OK is cheap: no allocation.
// Result<T> holds either a value or a non-OK Status. Neither throws; code
// that calls into throwing libraries (nlohmann::json, std::filesystem)
// converts at the call site.
//
// Codes are grouped like ZooKeeper's error ranges so that the coordination
// store, the HTTP API and the CLI can map them one to one. Never renumber:
// the numeric values appear in JSON error bodies and exit codes.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kiln {

enum class Code : int {
  kOk = 0,
  // Caller errors.
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kBadVersion = 4,
  kNotEmpty = 5,
  kNoChildrenForEphemerals = 6,
  kTooLarge = 7,
  kUnauthenticated = 8,
  kPermissionDenied = 9,
  kFailedPrecondition = 10,
  kCompacted = 11,
  kSessionExpired = 12,
  // Environment and system errors.
  kIoError = 20,
  kCorruption = 21,
  kUnavailable = 22,
  kTimeout = 23,
  kCancelled = 24,
  kInternal = 25,
};

// Stable lower_snake names used in JSON ("not_found") and by the CLI.
std::string_view CodeName(Code code);
// Inverse of CodeName; unknown names map to kInternal.
Code CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not_found: /kiln/nodes/web01"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with context: "loading space: ...".
  Status WithContext(std::string_view context) const;

  bool operator==(const Status& other) const = default;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Short constructors, named as in LevelDB: return InvalidArgument("...").
inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }

// An IoError carrying strerror(errno_value) and what was being done:
// ErrnoError("open /var/lib/kiln/token", errno) -> "open /var/lib/kiln/token: Permission denied".
Status ErrnoError(std::string_view what, int errno_value);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kInternal, "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: !ok() for a meaningful status; OK otherwise.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kiln

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if expr is not OK.
#define KILN_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::kiln::Status kiln_status_ = (expr);          \
    if (!kiln_status_.ok()) return kiln_status_;   \
  } while (0)

// KILN_ASSIGN_OR_RETURN(auto x, Foo()); returns Foo()'s status on error.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_CONCAT_(kiln_result_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
