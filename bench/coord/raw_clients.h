#pragma once
// Lean load generators for coord_http_bench: one thread drives many
// connections through epoll over plain sockets, writing each request from a
// few appends and reading each answer with a few scans, so that the client,
// which shares the machine's two cores with the server it measures, spends
// as little CPU per update as the protocol allows. The same treatment for
// both sides:
//
// - HttpLoop: HTTP/1.1 keep-alive connections to kiln, `depth` requests in
//   flight on each (1: the next is written when the answer has been read;
//   more: HTTP/1.1 pipelining, answers read in order).
// - ZkLoop: ZooKeeper sessions speaking its binary protocol (jute framing:
//   ConnectRequest, then setData/create requests), many requests in flight
//   on each connection as ZooKeeper's own clients pipeline them.
//
// Both count updates answered with success into `done`. HttpLoop counts
// requests unanswered after 10 s into `lost` (and reconnects); anything else
// unexpected (a refused connection, a non-2xx answer, a failed update in a
// batch, a ZooKeeper error) ends the process with a message (bench::Die).

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kiln::bench {

struct HttpTarget {
  std::string host;  // an IPv4 address
  int port = 0;
  std::string token;
};
// Parses "http://127.0.0.1:PORT" (no path).
HttpTarget ParseHttpUrl(const std::string& url, const std::string& token);

struct HttpCall {
  const char* method = "PUT";
  std::string path;  // under the server's URL
  std::string body;
  int updates = 1;  // counted as done when the answer is 2xx
};
// Makes connection `conn`'s request number `seq` into *call; false: none.
using MakeCall = std::function<bool(int conn, uint64_t seq, HttpCall* call)>;

// Drives `conns` connections (ids first_conn...) until `stop` is set or
// `make` runs out, then waits for the answers in flight.
void HttpLoop(const HttpTarget& target, int first_conn, int conns, int depth, const MakeCall& make,
              const std::atomic<bool>& stop, std::atomic<uint64_t>& done,
              std::atomic<uint64_t>& lost);

// ZooKeeper: `sessions` sessions to host:port, each keeping `inflight`
// requests going until `stop`, then waiting for the answers in flight.
// Request `seq` of session `s` is setData(path_of(s, seq), data, -1); with
// `create` set, create(path, data, open ACL, persistent) instead, and
// NODEEXISTS counts as success. `make` returns false to stop early.
using MakeZkPath = std::function<bool(int session, uint64_t seq, std::string* path)>;
void ZkLoop(const std::string& hostport, int sessions, int inflight, bool create,
            const std::string& data, const MakeZkPath& make, const std::atomic<bool>& stop,
            std::atomic<uint64_t>& done);

// The plain-socket pieces of both, for other drivers (fanout_bench.cc).
// Connects to an IPv4 host (TCP_NODELAY); dies on failure.
int Connect(const std::string& host, int port);
// Writes what it can of out[*sent...] without blocking; false when the peer is gone.
bool WriteSome(int fd, const std::string& out, size_t* sent);
// Appends what is readable to *in without blocking; false on EOF or error.
bool ReadSome(int fd, std::string* in);
// ZooKeeper's jute encoding (big-endian) and a new session on a connected
// socket (blocking; dies when refused).
void PutInt(std::string* out, int32_t v);
void PutLong(std::string* out, int64_t v);
void PutBytes(std::string* out, std::string_view s);
int32_t GetInt(const char* p);
void ZkHandshake(int fd);

}  // namespace kiln::bench
