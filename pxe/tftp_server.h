#pragma once
// kiln's TFTP server: read-only, RFC 1350 with options (RFC 2347), blksize
// (2348), timeout and tsize (2349) and windowsize (7440).
//
// One thread runs one epoll loop for every transfer. Each transfer gets
// its own UDP socket (its TID, RFC 1350), bound to the address the request
// arrived at and connected to the client, so the kernel filters strangers
// and reports a vanished client (ICMP port unreachable) as ECONNREFUSED,
// which ends the transfer at once. A window goes out with one segmented
// sendmsg(2) (UDP GSO, pxe/window_sender.h), or one sendmmsg(2) where the
// kernel refuses GSO.
//
// What is served comes from a TftpContent, asked once per read request on
// the loop thread; it decides whether a path is a file in the boot tree or
// a boot config rendered for the client. Paths reach it normalised and
// confined (pxe/tftp_path.h). Write requests are refused with a TFTP error;
// malformed requests get an error, other stray packets silence.
//
// Lifetime: Start() binds nothing itself; it takes a bound UDP socket (so
// the caller reports a busy port its own way). Stop() ends all transfers
// and joins the thread; it is idempotent and called by the destructor.
// The TftpContent must outlive the server.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/file_util.h"
#include "common/status.h"
#include "pxe/block_source.h"
#include "pxe/tftp_options.h"

namespace kiln::pxe {

struct TftpRequestInfo {
  std::string path;       // normalised, relative to the TFTP root
  std::string client_ip;  // "10.0.0.5"
  uint16_t client_port = 0;
  std::string local_ip;  // the address the request was sent to
};

struct TftpFile {
  std::unique_ptr<BlockSource> source;
  uint64_t size = 0;
};

class TftpContent {
 public:
  virtual ~TftpContent() = default;
  // Opens what a read request asks for. Called on the TFTP thread, so it
  // must answer from memory or the local disk, never wait on the network.
  // kNotFound becomes TFTP error 1, kPermissionDenied error 2, others 0.
  virtual Result<TftpFile> Open(const TftpRequestInfo& request) = 0;
};

// Serves the regular files below a directory (symlinks may not leave it).
class DirectoryContent : public TftpContent {
 public:
  static Result<std::unique_ptr<DirectoryContent>> Create(const std::string& root);
  Result<TftpFile> Open(const TftpRequestInfo& request) override;
  int root_fd() const { return root_.get(); }

 private:
  explicit DirectoryContent(UniqueFd root) : root_(std::move(root)) {}
  UniqueFd root_;
};

struct TftpServerOptions {
  tftp::Limits limits;
  size_t max_transfers = 4096;
  // netascii is converted in memory; larger files must be read in octet mode.
  uint64_t max_netascii_bytes = 16 << 20;
};

struct TftpStats {
  uint64_t requests = 0;   // read and write requests received
  uint64_t refused = 0;    // answered with an error instead of a transfer
  uint64_t active = 0;     // transfers in progress
  uint64_t completed = 0;  // transfers whose last block was acknowledged
  uint64_t failed = 0;     // timed out, aborted by the client, read errors
  uint64_t bytes = 0;      // payload bytes acknowledged by clients
  uint64_t retransmits = 0;
};

class TftpServer {
 public:
  // socket: a bound UDP socket (IPv4 or IPv6). Starts the loop thread.
  static Result<std::unique_ptr<TftpServer>> Start(UniqueFd socket, TftpServerOptions options,
                                                   TftpContent* content);
  ~TftpServer();
  TftpServer(const TftpServer&) = delete;
  TftpServer& operator=(const TftpServer&) = delete;

  void Stop();
  // "127.0.0.1:6969" (the real port when bound to port 0).
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  // Any thread.
  TftpStats stats() const;

  struct Impl;

 private:
  TftpServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
  uint16_t port_ = 0;
};

}  // namespace kiln::pxe
