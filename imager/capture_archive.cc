// Capture from a tar or cpio archive (through libarchive). Kept apart from
// capture.cc so that programs which only capture directories (kiln-agent)
// do not pull in libarchive and, through it, libxml2 and ICU's 30 MB of data:
// the install environment carries every library its agent links.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <unordered_map>

#include "common/file_util.h"
#include "imager/archive_scan.h"
#include "imager/capture.h"
#include "imager/capture_flow.h"
#include "imager/zstd_util.h"

namespace kiln::imager {

Result<CaptureReport> CaptureArchive(const std::string& path, const CaptureOptions& opts,
                                     CaptureTarget* target) {
  // An archive cannot be re-read cheaply (it may be stdin, or compressed), so
  // frames are spooled to an unnamed temporary file as they are made.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string spool_dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
  UniqueFd spool(::open(spool_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!spool.valid()) return ErrnoError("create a spool file in " + spool_dir, errno);
  struct Spooled {
    uint64_t offset, frame_size, size;
  };
  std::unordered_map<Sha256Digest, Spooled, DigestHash> index;
  uint64_t spool_end = 0;
  Compressor comp(opts.zstd_level);
  std::string frame;
  ArchiveScanOptions ao;
  ao.allow_devices = opts.allow_devices;
  CaptureReport report;
  if (opts.progress)
    ao.progress = [&](uint64_t bytes, uint64_t files) {
      opts.progress({"scan", bytes, 0, files, 0});
    };
  auto on_chunk = [&](const Sha256Digest& d, std::string_view bytes) -> Status {
    if (index.count(d)) return Status::Ok();
    comp.Compress(bytes, &frame);
    KILN_RETURN_IF_ERROR(WriteAll(spool.get(), frame, "spool"));
    index.emplace(d, Spooled{spool_end, frame.size(), bytes.size()});
    spool_end += frame.size();
    return Status::Ok();
  };
  KILN_ASSIGN_OR_RETURN(Manifest m, ScanArchive(path, ao, on_chunk));
  for (const auto& e : m.entries) report.files += e.type == EntryType::kFile;
  report.files_hashed = report.files;
  auto size_of = [&](const Sha256Digest& d) {
    auto it = index.find(d);
    return it == index.end() ? 0 : it->second.size;
  };
  int fd = spool.get();
  FrameFn make = [&](const Sha256Digest& d, Compressor&, std::string*, std::string* out) -> Status {
    auto it = index.find(d);
    if (it == index.end()) return Internal("no spooled frame for object " + ToHex(d));
    out->resize(it->second.frame_size);
    ssize_t n = ::pread(fd, out->data(), out->size(), static_cast<off_t>(it->second.offset));
    if (n != static_cast<ssize_t>(out->size())) return IoError("read spool");
    return Status::Ok();
  };
  return GiveUpOnFailure(
      FinishCapture(
          m, opts, target, std::move(report), {}, [](const DigestSet&) {}, size_of, make),
      target);
}

}  // namespace kiln::imager
