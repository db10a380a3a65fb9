// DirectWriter: any sequence of piece sizes makes exactly the file's bytes,
// O_DIRECT is used where the filesystem takes it and cleared at the end.

#include "imager/direct_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "common/file_util.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using kiln::test::TempDir;

namespace {

// Writes content through a DirectWriter in pieces of the given sizes
// (cycled), returns the writer's direct byte count and checks the file.
uint64_t WriteInPieces(const std::string& path, const std::string& content,
                       const std::vector<size_t>& sizes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  DirectWriter w(fd.get(), path);
  size_t at = 0;
  for (size_t i = 0; at < content.size(); ++i) {
    size_t n = std::min(sizes[i % sizes.size()], content.size() - at);
    REQUIRE(w.Write(std::string_view(content).substr(at, n)).ok());
    at += n;
  }
  REQUIRE(w.Finish().ok());
  CHECK((::fcntl(fd.get(), F_GETFL) & O_DIRECT) == 0);  // attributes follow, buffered
  fd.Reset();
  auto back = ReadFile(path);
  REQUIRE(back.ok());
  CHECK(back->size() == content.size());
  CHECK(*back == content);
  return w.direct_bytes();
}

}  // namespace

TEST_CASE("DirectWriter writes exactly the bytes given, in pieces of any size") {
  TempDir t;
  bool direct = kiln::imager::test::DirectIoWorks(t.path());
  INFO("O_DIRECT works here: " << direct);
  std::mt19937 rng(7);
  std::vector<size_t> odd;
  for (int i = 0; i < 64; ++i) odd.push_back(1 + rng() % (300 * 1024));

  // Not a multiple of the alignment: the tail goes through the page cache.
  std::string big = kiln::imager::test::RandomBytes(3 * DirectWriter::kBufferSize + 12345, 1);
  uint64_t d = WriteInPieces(t.Sub("big"), big, odd);
  CHECK(d == (direct ? big.size() / DirectWriter::kAlign * DirectWriter::kAlign : 0));

  // A multiple of the buffer: everything direct, nothing left for the tail.
  std::string even = kiln::imager::test::RandomBytes(2 * DirectWriter::kBufferSize, 2);
  CHECK(WriteInPieces(t.Sub("even"), even, {DirectWriter::kBufferSize}) ==
        (direct ? even.size() : 0));

  // One byte at a time across an alignment boundary, and a file shorter
  // than one aligned block (only a tail).
  std::string small = kiln::imager::test::RandomBytes(DirectWriter::kAlign + 3, 3);
  CHECK(WriteInPieces(t.Sub("bytes"), small, {1}) == (direct ? DirectWriter::kAlign : 0));
  CHECK(WriteInPieces(t.Sub("tiny"), "hello", {2}) == 0);
  CHECK(WriteInPieces(t.Sub("empty"), "", {1}) == 0);
}

namespace {
// A pwrite that refuses (EINVAL) the second write made while O_DIRECT is
// set, as a filesystem wanting a larger alignment would.
int direct_writes = 0;
ssize_t RefuseSecondDirect(int fd, const void* buf, size_t n, off_t offset) {
  if ((::fcntl(fd, F_GETFL) & O_DIRECT) != 0 && ++direct_writes == 2) {
    errno = EINVAL;
    return -1;
  }
  return ::pwrite(fd, buf, n, offset);
}
}  // namespace

TEST_CASE("a direct write refused half way goes on through the page cache, losing nothing") {
  TempDir t;
  if (!kiln::imager::test::DirectIoWorks(t.path())) {
    WARN("O_DIRECT does not work under " << t.path() << "; not tested");
    return;
  }
  std::string content = kiln::imager::test::RandomBytes(3 * DirectWriter::kBufferSize + 999, 4);
  std::string path = t.Sub("refused");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  direct_writes = 0;
  DirectWriter w(fd.get(), path, RefuseSecondDirect);
  REQUIRE(w.direct());
  for (size_t at = 0; at < content.size(); at += 100000)
    REQUIRE(w.Write(std::string_view(content).substr(at, 100000)).ok());
  REQUIRE(w.Finish().ok());
  CHECK(!w.direct());
  CHECK(w.direct_bytes() == DirectWriter::kBufferSize);  // the first block only
  CHECK((::fcntl(fd.get(), F_GETFL) & O_DIRECT) == 0);
  fd.Reset();
  auto back = ReadFile(path);
  REQUIRE(back.ok());
  CHECK(*back == content);
}

namespace {
// A pwrite whose third call fails as a full disk would; counts the calls
// and the thread that made them.
std::atomic<int> calls{0};
std::atomic<bool> off_caller{false};
std::thread::id caller;
ssize_t FailThird(int fd, const void* buf, size_t n, off_t offset) {
  if (std::this_thread::get_id() != caller) off_caller = true;
  if (++calls == 3) {
    errno = ENOSPC;
    return -1;
  }
  return ::pwrite(fd, buf, n, offset);
}
}  // namespace

// Full buffers are written by a helper thread while the caller fills the
// next one; a write that fails there is still the caller's error, naming
// the file, and nothing is reported done that was not written.
TEST_CASE("a background write that fails is returned by the writer's next call") {
  TempDir t;
  std::string path = t.Sub("full");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  calls = 0;
  off_caller = false;
  caller = std::this_thread::get_id();
  std::string block = kiln::imager::test::RandomBytes(DirectWriter::kBufferSize, 5);
  Status s;
  {
    DirectWriter w(fd.get(), path, FailThird);
    for (int i = 0; i < 6 && s.ok(); ++i) s = w.Write(block);
    if (s.ok()) s = w.Finish();
  }
  CHECK(off_caller);  // full buffers went to the helper
  REQUIRE(!s.ok());
  CHECK(s.code() == Code::kIoError);
  CHECK(s.message().find(path) != std::string::npos);
  CHECK(calls == 3);  // nothing written after the failure
}
