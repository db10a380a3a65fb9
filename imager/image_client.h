#pragma once
// The client side of the image HTTP API (docs/API.md), shared by the `kiln`
// CLI and kiln-agent: capture uploads and deploys. Uses common/http_client.h
// only; no server code.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/http_client.h"
#include "common/json.h"
#include "common/status.h"
#include "imager/apply.h"
#include "imager/capture.h"

namespace kiln::imager {

// Uploads a capture to a kiln server: the manifest first, then only the
// objects the server lacks (which it verifies), then commit.
class HttpCaptureTarget : public CaptureTarget {
 public:
  HttpCaptureTarget(HttpClient* http, std::string image, std::string note, std::string source)
      : http_(http), image_(std::move(image)), note_(std::move(note)), source_(std::move(source)) {}
  Result<CaptureOffer> Begin(const std::string& manifest, const ObjectFrames& eager,
                             bool commit_if_complete) override;
  Status PutObjects(const ObjectFrames& frames) override;
  Status PutPieces(const std::vector<FramePieces>& frames) override;
  int concurrent_puts() const override { return 2; }
  Result<bool> Open() override;
  Result<std::vector<Sha256Digest>> Offer(const std::vector<Sha256Digest>& digests) override;
  Result<VersionRecord> Commit() override;
  void Abort() override;

 private:
  // Performs a request on a free connection: the capture's own, else a
  // spare (uploads and offers run on several threads at once).
  Result<HttpReply> Send(std::string_view path, std::span<const std::string_view> body,
                         const HttpRequestOptions& opts);
  bool opened_ = false;  // by Open: Begin sends the manifest to it
  HttpClient* http_;
  std::string image_, note_, source_, id_;
  // Connections for uploads beyond the first in flight (the server
  // receives one batch while it verifies another), reused.
  std::mutex spare_mu_;
  bool http_busy_ = false;
  std::vector<std::unique_ptr<HttpClient>> spare_;
};

struct DeployProgress {
  uint64_t stream_bytes = 0, stream_total = 0;
  uint64_t entries = 0, entries_total = 0;
};

struct DeployOptions {
  std::string image;
  std::string version;  // "" = current
  std::string from;     // delta from this version ("" = full)
  ApplyOptions apply;
  int max_resumes = 8;  // reconnections after a broken transfer
  std::function<void(const DeployProgress&)> progress;
  // Tests: break the transfer once after this many bytes (0: never), as a
  // dropped connection would.
  uint64_t break_after = 0;
};

struct DeployReport {
  Json version;  // the version record deployed
  int from = 0;  // delta base, 0 for full
  ApplyStats apply;
  StreamCounts counts;
  uint64_t stream_bytes = 0;    // the stream's size
  uint64_t received_bytes = 0;  // what crossed the network, resumes included
  int resumes = 0;
  // Wall-clock milliseconds: resolving the versions, then streaming and
  // applying (apply.sync_ms of it at the end).
  double resolve_ms = 0, stream_ms = 0;
};

// Resolves image@version (and from) on the server, streams it and applies
// it to root. A broken connection resumes from where it stopped.
Result<DeployReport> DeployFromServer(HttpClient* http, const std::string& root,
                                      const DeployOptions& opts);

// Fetches a version's record ({"image":..,"version":{...}}).
Result<Json> GetVersion(HttpClient* http, const std::string& image, const std::string& version);

// Runs a stream from the server into any sink (deploy, export), resuming
// after breaks. path is the stream URL without the offset parameter.
struct StreamRun {
  uint64_t total = 0, received = 0;
  int resumes = 0;
};
Result<StreamRun> RunStream(HttpClient* http, const std::string& path, StreamSink* sink,
                            int max_resumes, uint64_t break_after,
                            const std::function<void(uint64_t received, uint64_t total)>& progress);

}  // namespace kiln::imager
