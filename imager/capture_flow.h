#pragma once
// The half of a capture that both sources share (capture.cc for directories,
// capture_archive.cc for archives): offer the manifest, send the frames the
// target lacks, commit. Internal to imager/.

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "imager/capture.h"
#include "imager/zstd_util.h"

namespace kiln::imager {

// Where an object's compressed frame comes from during the upload.
using FrameFn = std::function<Status(const Sha256Digest&, Compressor&, std::string* scratch,
                                     std::string* frame)>;

// prepare(objects) runs before size_of and make_frame are asked about those
// objects: for `eager` (objects the target probably lacks, sent with the
// offer when they are few; may be empty) and again once the target has said
// what it lacks.
Result<CaptureReport> FinishCapture(const Manifest& m, const CaptureOptions& opts,
                                    CaptureTarget* target, CaptureReport report,
                                    const std::vector<Sha256Digest>& eager,
                                    const std::function<void(const DigestSet&)>& prepare,
                                    const std::function<uint64_t(const Sha256Digest&)>& size_of,
                                    const FrameFn& make_frame);

// r, after giving the target's capture up when r failed: what it had
// staged goes now (CaptureTarget::Abort). Every capture ends through it.
Result<CaptureReport> GiveUpOnFailure(Result<CaptureReport> r, CaptureTarget* target);

}  // namespace kiln::imager
