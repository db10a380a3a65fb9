#include "common/status.h"

#include <catch2/catch.hpp>

using namespace kiln;

TEST_CASE("OK status is cheap and prints ok") {
  Status s;
  CHECK(s.ok());
  CHECK(s.ToString() == "ok");
  CHECK(s.message().empty());
}

TEST_CASE("error status carries code name and message") {
  Status s = NotFound("/kiln/nodes/web01");
  CHECK_FALSE(s.ok());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.ToString() == "not_found: /kiln/nodes/web01");
  CHECK(s.WithContext("reading node").message() == "reading node: /kiln/nodes/web01");
}

TEST_CASE("code names round-trip and unknown names become internal") {
  for (Code c : {Code::kOk, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists,
                 Code::kBadVersion, Code::kNotEmpty, Code::kNoChildrenForEphemerals,
                 Code::kTooLarge, Code::kUnauthenticated, Code::kPermissionDenied,
                 Code::kFailedPrecondition, Code::kCompacted, Code::kSessionExpired,
                 Code::kIoError, Code::kCorruption, Code::kUnavailable, Code::kTimeout,
                 Code::kCancelled, Code::kInternal}) {
    CHECK(CodeFromName(CodeName(c)) == c);
  }
  CHECK(CodeFromName("no_such_code") == Code::kInternal);
}

TEST_CASE("ErrnoError maps errno to codes and names the operation") {
  CHECK(ErrnoError("open x", ENOENT).code() == Code::kNotFound);
  CHECK(ErrnoError("open x", EACCES).code() == Code::kPermissionDenied);
  CHECK(ErrnoError("open x", EIO).code() == Code::kIoError);
  CHECK(ErrnoError("open x", ENOENT).message() == "open x: No such file or directory");
}

namespace {
Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd");
  return v / 2;
}
Result<int> Quarter(int v) {
  KILN_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}
Status CheckEven(int v) {
  KILN_RETURN_IF_ERROR(Half(v).status());
  return Status::Ok();
}
}  // namespace

TEST_CASE("Result holds a value or a status and the macros propagate") {
  CHECK(*Quarter(8) == 2);
  CHECK(Quarter(6).status().message() == "odd");
  CHECK(CheckEven(4).ok());
  CHECK(CheckEven(3).code() == Code::kInvalidArgument);
  CHECK(Half(3).value_or(-1) == -1);
}

TEST_CASE("a Result built from an OK status is an internal error, not a value") {
  Result<int> r = Status::Ok();
  CHECK_FALSE(r.ok());
  CHECK(r.status().code() == Code::kInternal);
}
