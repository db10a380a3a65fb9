#include "tests/imager/local_store.h"

#include <catch2/catch.hpp>
#include <optional>

#include "common/file_util.h"

namespace kiln::imager::test {

LocalStore::LocalStore() {
  auto s = ImageStore::Open(tmp_.Sub("images"));
  REQUIRE(s.ok());
  store_ = std::move(*s);
}

Result<CaptureReport> LocalStore::TryCapture(const std::string& image, const std::string& dir,
                                             CaptureOptions opts) {
  LocalCaptureTarget target(store_.get(), image, "", "dir:" + dir);
  return CaptureDirectory(dir, opts, &target);
}

CaptureReport LocalStore::Capture(const std::string& image, const std::string& dir,
                                  CaptureOptions opts) {
  auto r = TryCapture(image, dir, opts);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

std::string Materialize(const ObjectStore& store, const StreamPlan& plan) {
  std::string out;
  for (const auto& s : plan.segments) {
    out += s.bytes;
    if (s.has_object) {
      auto f = store.OpenFrame(s.object);
      REQUIRE(f.ok());
      std::string frame(f->size, '\0');
      REQUIRE(::pread(f->fd.get(), frame.data(), frame.size(), static_cast<off_t>(f->offset)) ==
              static_cast<ssize_t>(frame.size()));
      out += frame;
    }
  }
  REQUIRE(out.size() == plan.total);
  return out;
}

std::string LocalStore::Stream(const std::string& image, const std::string& version,
                               const std::string& from) {
  auto t = store_->Resolve(image, version);
  REQUIRE(t.ok());
  std::optional<ResolvedVersion> b;
  if (!from.empty()) {
    auto r = store_->Resolve(image, from);
    REQUIRE(r.ok());
    b = *r;
  }
  auto plan = store_->PlanStream(b ? &*b : nullptr, *t);
  REQUIRE(plan.ok());
  return Materialize(store_->objects(), **plan);
}

Result<ApplyStats> LocalStore::Apply(const std::string& stream, const std::string& root,
                                     ApplyOptions opts) {
  KILN_ASSIGN_OR_RETURN(auto applier, Applier::Open(root, opts));
  StreamReader reader(applier.get());
  // Odd-sized pieces exercise the reader's buffering.
  size_t pos = 0, step = 1;
  while (pos < stream.size()) {
    size_t n = std::min(stream.size() - pos, step);
    Status s = reader.Feed(std::string_view(stream).substr(pos, n));
    if (!s.ok()) {
      applier->Abort();
      return s;
    }
    pos += n;
    step = step * 7 % 100003 + 1;
  }
  Status s = reader.Finish();
  if (!s.ok()) {
    applier->Abort();
    return s;
  }
  return applier->stats();
}

Result<ApplyStats> LocalStore::Deploy(const std::string& image, const std::string& version,
                                      const std::string& root, const std::string& from,
                                      ApplyOptions opts) {
  return Apply(Stream(image, version, from), root, opts);
}

}  // namespace kiln::imager::test
