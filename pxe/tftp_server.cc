#include "pxe/tftp_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "pxe/event_loop.h"
#include "pxe/tftp_packet.h"
#include "pxe/tftp_path.h"
#include "pxe/tftp_transfer.h"
#include "pxe/udp.h"
#include "pxe/window_sender.h"

namespace kiln::pxe {

using tftp::ErrorCode;
using Clock = EventLoop::Clock;

// ---- DirectoryContent ----

Result<std::unique_ptr<DirectoryContent>> DirectoryContent::Create(const std::string& root) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open TFTP root " + root, errno);
  return std::unique_ptr<DirectoryContent>(new DirectoryContent(std::move(fd)));
}

Result<TftpFile> DirectoryContent::Open(const TftpRequestInfo& request) {
  KILN_ASSIGN_OR_RETURN(OpenedFile f, OpenBeneath(root_.get(), request.path));
  TftpFile out;
  out.size = f.size;
  out.source = std::make_unique<FileSource>(std::move(f.fd), request.path);
  return out;
}

// ---- the server ----

namespace {

ErrorCode TftpErrorFor(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound: return ErrorCode::kFileNotFound;
    case Code::kPermissionDenied: return ErrorCode::kAccessViolation;
    default: return ErrorCode::kNotDefined;
  }
}

// Names and options come from the network: keep log lines ASCII.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f)
      out += fmt::format("\\x{:02x}", u);
    else
      out += c;
  }
  return out;
}

std::string OptionsText(const std::vector<tftp::Option>& options) {
  std::string s;
  for (const auto& [k, v] : options) {
    if (!s.empty()) s += ' ';
    s += Printable(k) + "=" + Printable(v);
  }
  return s;
}

}  // namespace

struct Session : tftp::PacketSink {
  TftpServer::Impl* server = nullptr;
  UniqueFd fd;
  std::string key;     // client "ip:port" NUL file name as sent
  std::string client;  // "ip:port"
  std::string path;
  std::string requested;  // the client's options, for the log
  std::unique_ptr<tftp::Transfer> transfer;
  Clock::time_point started;
  EventLoop::TimerId timer = 0;
  Clock::time_point timer_at{};
  bool timer_armed = false;
  bool peer_gone = false;

  WindowSender sender{-1};  // on fd

  void Send(std::span<const tftp::OutPacket> packets) override {
    if (!sender.Send(packets)) peer_gone = true;
  }
};

struct TftpServer::Impl {
  TftpServerOptions options;
  TftpContent* content = nullptr;
  UniqueFd socket;
  SockAddr bound;
  std::unique_ptr<EventLoop> loop;
  std::thread thread;
  std::unordered_map<int, std::unique_ptr<Session>> sessions;  // by fd
  std::map<std::string, Session*> by_client;

  std::atomic<uint64_t> requests{0}, refused{0}, active{0}, completed{0}, failed{0}, bytes{0},
      retransmits{0};

  void OnServerReadable();
  void HandleDatagram(std::span<const uint8_t> data, const Datagram& dg);
  void HandleRead(const tftp::Request& req, const Datagram& dg);
  void Refuse(const Datagram& dg, const std::string& file, ErrorCode code, const std::string& why);
  void OnSessionReadable(Session* s);
  void ArmTimer(Session* s);
  void OnSessionTimer(Session* s);
  void AfterEvent(Session* s);
  void CloseSession(Session* s);
  void CloseAll();
};

void TftpServer::Impl::OnServerReadable() {
  // A bounded batch per wakeup keeps transfers flowing during a flood.
  alignas(8) uint8_t buf[65536];
  for (int i = 0; i < 64; ++i) {
    Datagram dg;
    if (!ReceiveDatagram(socket.get(), buf, &dg)) return;
    HandleDatagram(std::span<const uint8_t>(buf, dg.size), dg);
  }
}

void TftpServer::Impl::Refuse(const Datagram& dg, const std::string& file, ErrorCode code,
                              const std::string& why) {
  refused.fetch_add(1, std::memory_order_relaxed);
  log::Info("tftp", "refused",
            {{"client", dg.from.ToString()},
             {"file", Printable(file)},
             {"error", static_cast<int>(code)},
             {"reason", Printable(why)}});
  std::string err = tftp::MakeError(code, why);
  ::sendto(socket.get(), err.data(), err.size(), MSG_DONTWAIT, dg.from.get(), dg.from.len);
}

void TftpServer::Impl::HandleDatagram(std::span<const uint8_t> data, const Datagram& dg) {
  uint16_t op = tftp::PeekOpcode(data);
  // Only requests belong on this port. Anything else (stray DATA, ACK,
  // ERROR, junk) gets silence: answering could start an error ping-pong
  // with another server, or make us a reflector.
  if (op != 1 && op != 2) return;
  requests.fetch_add(1, std::memory_order_relaxed);
  if (dg.truncated) {
    Refuse(dg, "", ErrorCode::kIllegalOperation, "request larger than 64 KiB");
    return;
  }
  auto packet = tftp::Parse(data);
  if (!packet.ok()) {
    Refuse(dg, "", ErrorCode::kIllegalOperation, "malformed request: " + packet.status().message());
    return;
  }
  const auto& req = std::get<tftp::Request>(*packet);
  if (req.op == tftp::Opcode::kWrq) {
    Refuse(dg, req.filename, ErrorCode::kAccessViolation,
           "write requests are refused: this TFTP server is read-only");
    return;
  }
  HandleRead(req, dg);
}

void TftpServer::Impl::HandleRead(const tftp::Request& req, const Datagram& dg) {
  // A client that repeats its request before our first answer reaches it
  // keeps its one transfer; the transfer's own timer resends.
  std::string key = dg.from.ToString() + '\0' + req.filename;
  if (by_client.count(key)) return;
  if (req.mode != "octet" && req.mode != "netascii") {
    Refuse(dg, req.filename, ErrorCode::kIllegalOperation,
           fmt::format("transfer mode \"{}\" is not supported (use octet or netascii)", req.mode));
    return;
  }
  if (sessions.size() >= options.max_transfers) {
    Refuse(dg, req.filename, ErrorCode::kNotDefined, "server busy: too many transfers, retry");
    return;
  }
  auto path = NormalizeTftpPath(req.filename);
  if (!path.ok()) {
    Refuse(dg, req.filename, TftpErrorFor(path.status()), path.status().message());
    return;
  }
  SockAddr local = dg.has_to ? dg.to : bound;
  TftpRequestInfo info{*path, dg.from.Ip(), dg.from.Port(), local.Ip()};
  auto file = content->Open(info);
  if (!file.ok()) {
    Refuse(dg, *path, TftpErrorFor(file.status()), file.status().message());
    return;
  }
  std::optional<uint64_t> size = file->size;
  if (req.mode == "netascii") {
    auto text = ReadAllFrom(*file->source, options.max_netascii_bytes);
    if (!text.ok()) {
      Refuse(
          dg, *path, ErrorCode::kNotDefined,
          fmt::format("{}: {}; fetch it in octet (binary) mode", *path, text.status().message()));
      return;
    }
    std::string encoded = NetasciiEncode(*text);
    size = encoded.size();
    file->source = std::make_unique<MemorySource>(std::move(encoded));
  }
  tftp::Negotiated neg = tftp::Negotiate(req.options, options.limits, size);

  auto fd = OpenTransferSocket(local, dg.from);
  if (!fd.ok()) {
    Refuse(dg, *path, ErrorCode::kNotDefined, fd.status().message());
    return;
  }
  auto s = std::make_unique<Session>();
  Session* raw = s.get();
  s->server = this;
  s->fd = std::move(*fd);
  s->sender = WindowSender(s->fd.get());
  s->key = key;
  s->client = dg.from.ToString();
  s->path = *path;
  s->requested = OptionsText(req.options);
  s->started = Clock::now();
  s->transfer = std::make_unique<tftp::Transfer>(std::move(file->source), std::move(neg),
                                                 options.limits, raw);
  Status w = loop->Watch(s->fd.get(), EPOLLIN, [this, raw](uint32_t) { OnSessionReadable(raw); });
  if (!w.ok()) {
    Refuse(dg, *path, ErrorCode::kNotDefined, w.message());
    return;
  }
  by_client[key] = raw;
  sessions[raw->fd.get()] = std::move(s);
  active.fetch_add(1, std::memory_order_relaxed);
  log::Debug("tftp", "start",
             {{"client", raw->client},
              {"file", Printable(raw->path)},
              {"mode", Printable(req.mode)},
              {"options", raw->requested}});
  raw->transfer->Start(Clock::now());
  AfterEvent(raw);
}

void TftpServer::Impl::OnSessionReadable(Session* s) {
  // One datagram per wakeup: a client sends one ACK per window, so a second
  // recv would almost always be a wasted EAGAIN syscall; the loop is
  // level-triggered and comes back at once if more is queued.
  alignas(8) uint8_t buf[2048];
  ssize_t n;
  do {
    n = ::recv(s->fd.get(), buf, sizeof buf, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    s->transfer->OnDatagram(std::span<const uint8_t>(buf, std::min<size_t>(n, sizeof buf)),
                            Clock::now());
  } else if (errno == ECONNREFUSED) {
    s->peer_gone = true;
  }
  AfterEvent(s);
}

void TftpServer::Impl::ArmTimer(Session* s) {
  auto when = s->transfer->deadline();
  // Lazy timers: one pending per session. A later deadline is picked up
  // when the pending timer fires; only an earlier one needs a new timer.
  if (s->timer_armed && s->timer_at <= when) return;
  if (s->timer_armed) loop->CancelTimer(s->timer);
  s->timer = loop->AddTimer(when, [this, s] { OnSessionTimer(s); });
  s->timer_at = when;
  s->timer_armed = true;
}

void TftpServer::Impl::OnSessionTimer(Session* s) {
  s->timer_armed = false;
  s->transfer->OnTimer(Clock::now());
  AfterEvent(s);
}

void TftpServer::Impl::AfterEvent(Session* s) {
  if (s->peer_gone && !s->transfer->done()) {
    // Nothing to tell a client whose port is closed.
    CloseSession(s);
    return;
  }
  if (s->transfer->done()) {
    CloseSession(s);
    return;
  }
  ArmTimer(s);
}

void TftpServer::Impl::CloseSession(Session* s) {
  const auto& t = *s->transfer;
  double secs = std::chrono::duration<double>(Clock::now() - s->started).count();
  const auto& neg = t.negotiated();
  bool ok = t.outcome() == tftp::Transfer::Outcome::kComplete;
  std::string outcome = s->peer_gone && !t.done() ? "client_gone"
                        : t.done()                ? std::string(tftp::OutcomeName(t.outcome()))
                                                  : "server_stopped";
  std::initializer_list<log::Field> fields = {{"client", s->client},
                                              {"file", Printable(s->path)},
                                              {"outcome", outcome},
                                              {"bytes", t.bytes_acked()},
                                              {"seconds", fmt::format("{:.3f}", secs)},
                                              {"blksize", neg.blksize},
                                              {"windowsize", neg.windowsize},
                                              {"timeout_ms", neg.timeout.count()},
                                              {"requested", s->requested},
                                              {"retransmits", t.retransmits()},
                                              {"detail", t.detail()}};
  if (ok) {
    log::Info("tftp", "sent", fields);
    completed.fetch_add(1, std::memory_order_relaxed);
  } else {
    log::Warn("tftp", "transfer failed", fields);
    failed.fetch_add(1, std::memory_order_relaxed);
  }
  bytes.fetch_add(t.bytes_acked(), std::memory_order_relaxed);
  retransmits.fetch_add(t.retransmits(), std::memory_order_relaxed);
  active.fetch_sub(1, std::memory_order_relaxed);
  if (s->timer_armed) loop->CancelTimer(s->timer);
  loop->Unwatch(s->fd.get());
  by_client.erase(s->key);
  sessions.erase(s->fd.get());  // destroys s
}

void TftpServer::Impl::CloseAll() {
  while (!sessions.empty()) CloseSession(sessions.begin()->second.get());
}

Result<std::unique_ptr<TftpServer>> TftpServer::Start(UniqueFd socket, TftpServerOptions options,
                                                      TftpContent* content) {
  std::unique_ptr<TftpServer> s(new TftpServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& im = *s->impl_;
  im.options = std::move(options);
  im.content = content;
  im.socket = std::move(socket);
  KILN_RETURN_IF_ERROR(PrepareServerSocket(im.socket.get()));
  KILN_ASSIGN_OR_RETURN(im.bound, LocalSockAddr(im.socket.get()));
  s->address_ = im.bound.ToString();
  s->port_ = im.bound.Port();
  KILN_ASSIGN_OR_RETURN(im.loop, EventLoop::Create());
  Impl* raw = &im;
  KILN_RETURN_IF_ERROR(
      im.loop->Watch(im.socket.get(), EPOLLIN, [raw](uint32_t) { raw->OnServerReadable(); }));
  im.thread = std::thread([raw] {
    raw->loop->Run();
    raw->CloseAll();
  });
  log::Info("tftp", "listening",
            {{"addr", s->address_},
             {"max_blksize", im.options.limits.max_blksize},
             {"max_windowsize", im.options.limits.max_windowsize}});
  return s;
}

TftpServer::~TftpServer() {
  Stop();
}

void TftpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->loop->Stop();
  impl_->thread.join();
}

TftpStats TftpServer::stats() const {
  TftpStats st;
  if (!impl_) return st;
  st.requests = impl_->requests.load(std::memory_order_relaxed);
  st.refused = impl_->refused.load(std::memory_order_relaxed);
  st.active = impl_->active.load(std::memory_order_relaxed);
  st.completed = impl_->completed.load(std::memory_order_relaxed);
  st.failed = impl_->failed.load(std::memory_order_relaxed);
  st.bytes = impl_->bytes.load(std::memory_order_relaxed);
  st.retransmits = impl_->retransmits.load(std::memory_order_relaxed);
  return st;
}

}  // namespace kiln::pxe
