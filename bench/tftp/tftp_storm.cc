// tftp_storm: many TFTP clients at once, for bench/tftp. One epoll loop
// drives N read transfers of the same file from one server (a boot storm:
// a rack powering on), each a plain RFC 1350/2347/2348/7440 client, and
// prints one JSON line: clients, completed, failed, bytes, seconds,
// aggregate MB/s, retransmitted ACKs.
//
//   tftp_storm --port P --file NAME --clients 500 [--host 127.0.0.1]
//              [--blksize 1468] [--windowsize 1] [--timeout-ms 1000]
//              [--retries 8] [--expect BYTES]
//
// A client ACKs the last block of each window (or every block with
// windowsize 1), re-sends its last ACK when the server is silent for the
// timeout, and fails after --retries silent timeouts or a TFTP error.
// Duplicate DATA is not answered (no sorcerer's apprentice from our side).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 69;
  std::string file;
  int clients = 1;
  int blksize = 1468;
  int windowsize = 1;
  int timeout_ms = 1000;
  int retries = 8;
  long long expect = -1;
};

struct Client {
  int fd = -1;
  sockaddr_in server{};  // the server's TID once known
  bool tid_known = false;
  uint64_t next = 1;  // next expected block (64-bit)
  uint64_t bytes = 0;
  int in_window = 0;
  uint64_t gap_acked = 0;  // the block a gap was last reported for
  int blksize = 512;
  int window = 1;
  std::string last_ack;
  Clock::time_point deadline;
  int silent = 0;
  bool done = false, failed = false;
  std::string error;
};

std::string Ack(uint16_t block) {
  std::string a(4, '\0');
  a[1] = 4;
  a[2] = static_cast<char>(block >> 8);
  a[3] = static_cast<char>(block & 0xff);
  return a;
}

void SendTo(Client& c, const std::string& bytes, const sockaddr_in& to) {
  ::sendto(c.fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
}

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host")
      o->host = v;
    else if (k == "--port")
      o->port = std::atoi(v.c_str());
    else if (k == "--file")
      o->file = v;
    else if (k == "--clients")
      o->clients = std::atoi(v.c_str());
    else if (k == "--blksize")
      o->blksize = std::atoi(v.c_str());
    else if (k == "--windowsize")
      o->windowsize = std::atoi(v.c_str());
    else if (k == "--timeout-ms")
      o->timeout_ms = std::atoi(v.c_str());
    else if (k == "--retries")
      o->retries = std::atoi(v.c_str());
    else if (k == "--expect")
      o->expect = std::atoll(v.c_str());
    else
      return false;
  }
  return !o->file.empty() && o->clients > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, &o)) {
    std::fprintf(
        stderr,
        "usage: tftp_storm --port P --file NAME --clients N [--host H] "
        "[--blksize B] [--windowsize W] [--timeout-ms T] [--retries R] [--expect BYTES]\n");
    return 2;
  }
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &server.sin_addr);

  std::string rrq;
  rrq += std::string("\0\1", 2) + o.file + '\0' + "octet" + '\0';
  rrq += std::string("blksize") + '\0' + std::to_string(o.blksize) + '\0';
  if (o.windowsize > 1)
    rrq += std::string("windowsize") + '\0' + std::to_string(o.windowsize) + '\0';

  int ep = ::epoll_create1(0);
  std::vector<Client> clients(static_cast<size_t>(o.clients));
  auto start = Clock::now();
  auto timeout = std::chrono::milliseconds(o.timeout_ms);
  for (size_t i = 0; i < clients.size(); ++i) {
    Client& c = clients[i];
    c.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int buf = 1 << 20;
    ::setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    c.last_ack = rrq;  // until the first answer, "re-send" means the request
    SendTo(c, rrq, server);
    c.deadline = start + timeout;
  }
  size_t remaining = clients.size();
  uint64_t retransmits = 0;
  std::vector<char> pkt(70000);
  epoll_event events[256];
  while (remaining > 0) {
    int n = ::epoll_wait(ep, events, 256, 20);
    auto now = Clock::now();
    for (int e = 0; e < n; ++e) {
      Client& c = clients[events[e].data.u64];
      for (;;) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        ssize_t len =
            ::recvfrom(c.fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (len < 0) break;
        if (c.done || len < 4) continue;
        if (!c.tid_known) {
          c.server = from;
          c.tid_known = true;
        } else if (from.sin_port != c.server.sin_port) {
          continue;  // another TID: not ours
        }
        uint16_t op = static_cast<uint16_t>((static_cast<uint8_t>(pkt[0]) << 8) |
                                            static_cast<uint8_t>(pkt[1]));
        uint16_t block = static_cast<uint16_t>((static_cast<uint8_t>(pkt[2]) << 8) |
                                               static_cast<uint8_t>(pkt[3]));
        if (op == 5) {
          c.done = c.failed = true;
          c.error =
              std::string(pkt.data() + 4, strnlen(pkt.data() + 4, static_cast<size_t>(len - 4)));
          --remaining;
          break;
        }
        if (op == 6) {  // OACK
          c.blksize = 512;
          c.window = 1;
          for (ssize_t p = 2; p < len;) {
            std::string k(pkt.data() + p);
            p += static_cast<ssize_t>(k.size()) + 1;
            if (p >= len) break;
            std::string v(pkt.data() + p);
            p += static_cast<ssize_t>(v.size()) + 1;
            if (k == "blksize") c.blksize = std::atoi(v.c_str());
            if (k == "windowsize") c.window = std::atoi(v.c_str());
          }
          c.last_ack = Ack(0);
          SendTo(c, c.last_ack, c.server);
          c.deadline = now + timeout;
          c.silent = 0;
          continue;
        }
        if (op != 3) continue;
        if (block != static_cast<uint16_t>(c.next & 0xffff)) {
          // A gap (RFC 7440: ACK the last block received in order) or a
          // duplicate (ignored).
          uint16_t last = static_cast<uint16_t>((c.next - 1) & 0xffff);
          if (static_cast<uint16_t>(block - last) < 0x8000 && block != last && c.window > 1 &&
              c.gap_acked != c.next) {
            c.gap_acked = c.next;
            c.last_ack = Ack(last);
            SendTo(c, c.last_ack, c.server);
            c.in_window = 0;
            c.deadline = now + timeout;
          }
          continue;
        }
        size_t payload = static_cast<size_t>(len - 4);
        c.bytes += payload;
        ++c.next;
        c.silent = 0;
        bool last = payload < static_cast<size_t>(c.blksize);
        if (++c.in_window >= c.window || last) {
          c.last_ack = Ack(block);
          SendTo(c, c.last_ack, c.server);
          c.in_window = 0;
        }
        c.deadline = now + timeout;
        if (last) {
          c.done = true;
          --remaining;
          break;
        }
      }
    }
    for (auto& c : clients) {
      if (c.done || now < c.deadline) continue;
      if (++c.silent > o.retries) {
        c.done = c.failed = true;
        c.error = "timed out";
        --remaining;
        continue;
      }
      ++retransmits;
      SendTo(c, c.last_ack, c.tid_known ? c.server : server);
      c.deadline = now + timeout;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t bytes = 0;
  int ok = 0, failed = 0;
  std::string first_error;
  for (auto& c : clients) {
    bytes += c.bytes;
    bool good = !c.failed && (o.expect < 0 || static_cast<long long>(c.bytes) == o.expect);
    if (good)
      ++ok;
    else {
      ++failed;
      if (first_error.empty())
        first_error = c.failed ? c.error : "short file: " + std::to_string(c.bytes);
    }
    ::close(c.fd);
  }
  std::printf(
      "{\"clients\":%d,\"completed\":%d,\"failed\":%d,\"bytes\":%llu,\"seconds\":%.3f,"
      "\"mbps\":%.1f,\"retransmits\":%llu,\"first_error\":\"%s\"}\n",
      o.clients, ok, failed, static_cast<unsigned long long>(bytes), secs,
      static_cast<double>(bytes) / 1e6 / secs, static_cast<unsigned long long>(retransmits),
      first_error.c_str());
  return failed == 0 ? 0 : 1;
}
