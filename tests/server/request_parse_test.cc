#include <catch2/catch.hpp>
#include <random>

#include "server/http/chunked_body.h"
#include "server/http/request_head.h"

using namespace kiln::http;

namespace {

HeadParse Parse(std::string_view text, RequestHead* head) {
  return ParseRequestHead(text, head);
}

// Feeds a chunked body in pieces of the given size; returns the result of
// the last Feed and the bytes consumed in all.
ChunkedDecoder::Result FeedInPieces(std::string_view coded, size_t piece, std::string* body,
                                    uint64_t max, size_t* consumed, ChunkedDecoder* d) {
  *consumed = 0;
  ChunkedDecoder::Result r = ChunkedDecoder::Result::kNeedMore;
  while (*consumed < coded.size()) {
    size_t n = std::min(piece, coded.size() - *consumed);
    size_t used = 0;
    r = d->Feed(coded.substr(*consumed, n), body, max, &used);
    *consumed += used;
    if (r != ChunkedDecoder::Result::kNeedMore) break;
    REQUIRE(used == n);  // need-more always takes everything it was given
  }
  return r;
}

}  // namespace

TEST_CASE("a request head is read whole, with its framing and connection flags") {
  RequestHead h;
  std::string text =
      "PUT /api/v1/coord/data/a%20b?version=3&x=a+b HTTP/1.1\r\n"
      "Host: 127.0.0.1\r\n"
      "Content-Length:  12 \r\n"
      "X-Empty:\r\n"
      "Expect: 100-continue\r\n"
      "\r\n"
      "body follows";
  HeadParse p = Parse(text, &h);
  REQUIRE(p.result == HeadParse::Result::kDone);
  CHECK(p.consumed == text.size() - 12);
  CHECK(h.method == "PUT");
  CHECK(h.target == "/api/v1/coord/data/a%20b?version=3&x=a+b");
  CHECK(h.minor_version == 1);
  CHECK(h.content_length == 12);
  CHECK(!h.chunked);
  CHECK(h.keep_alive);
  CHECK(h.expect_continue);
  REQUIRE(h.headers.size() == 4);
  CHECK(h.headers[1] == std::pair<std::string, std::string>{"content-length", "12"});
  CHECK(h.headers[2] == std::pair<std::string, std::string>{"x-empty", ""});

  std::string path;
  std::map<std::string, std::string> query;
  std::string error;
  REQUIRE(DecodeTarget(h.target, &path, &query, &error));
  CHECK(path == "/api/v1/coord/data/a b");
  CHECK(query == std::map<std::string, std::string>{{"version", "3"}, {"x", "a b"}});
}

TEST_CASE("a head that has not fully arrived asks for more, at every split") {
  const std::string text = "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  for (size_t n = 0; n < text.size(); ++n) {
    RequestHead h;
    CHECK(Parse(text.substr(0, n), &h).result == HeadParse::Result::kNeedMore);
  }
  RequestHead h;
  HeadParse p = Parse(text, &h);
  REQUIRE(p.result == HeadParse::Result::kDone);
  CHECK(!h.keep_alive);
}

TEST_CASE("HTTP/1.0, bare LF line ends and empty lines before a request are accepted") {
  RequestHead h;
  HeadParse p = Parse("\r\n\nGET / HTTP/1.0\nA: b\n\n", &h);
  REQUIRE(p.result == HeadParse::Result::kDone);
  CHECK(h.minor_version == 0);
  CHECK(!h.keep_alive);  // HTTP/1.0 connections end with their answer
  CHECK(h.headers.size() == 1);

  p = Parse("POST /u HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &h);
  REQUIRE(p.result == HeadParse::Result::kDone);
  CHECK(h.chunked);
}

TEST_CASE("malformed heads are refused with a status and a message naming the fault") {
  struct Case {
    std::string text;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"GET /\r\n\r\n", 400, "malformed request line"},
      {"GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line"},
      {"G@T / HTTP/1.1\r\n\r\n", 400, "malformed method"},
      {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP version \"HTTP/2.0\" is not supported"},
      {"GET / HTTX/1.1\r\n\r\n", 400, "malformed HTTP version"},
      {"GET /\x01 HTTP/1.1\r\n\r\n", 400, "malformed request target"},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "no colon"},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "malformed header name"},
      {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "folded header line"},
      {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, "bare CR"},
      {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "control character in header \"A\""},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "malformed Content-Length \"1x\""},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "malformed Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400,
       "malformed Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
       "two different Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "ambiguous"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
       "transfer coding \"gzip, chunked\" is not supported"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
      {"POST / HTTP/1.1\r\nExpect: something\r\n\r\n", 417, "expectation \"something\""},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    RequestHead h;
    HeadParse p = Parse(c.text, &h);
    REQUIRE(p.result == HeadParse::Result::kError);
    CHECK(p.status == c.status);
    CHECK(p.error.find(c.says) != std::string::npos);
  }
}

TEST_CASE("a head larger than the limit is refused with 431, complete or not") {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'a');
  RequestHead h;
  HeadParse p = Parse(big, &h);
  REQUIRE(p.result == HeadParse::Result::kError);
  CHECK(p.status == 431);
  p = Parse(big + "\r\n\r\n", &h);
  REQUIRE(p.result == HeadParse::Result::kError);
  CHECK(p.status == 431);
}

TEST_CASE("request targets decode their path and query, and refuse what is not a path") {
  std::string path, error;
  std::map<std::string, std::string> query;
  REQUIRE(DecodeTarget("/a+b/%2Fc?k=%41&flag&=v&&k2=x%3Dy#frag", &path, &query, &error));
  CHECK(path == "/a+b//c");  // '+' is a space only in a query
  CHECK(query ==
        std::map<std::string, std::string>{{"k", "A"}, {"flag", ""}, {"", "v"}, {"k2", "x=y"}});
  REQUIRE(DecodeTarget("http://host:1/p?q=1", &path, &query, &error));
  CHECK(path == "/p");
  CHECK(query.at("q") == "1");
  REQUIRE(DecodeTarget("/x?k=1&k=2", &path, &query, &error));
  CHECK(query.at("k") == "2");

  for (std::string_view bad : {"x", "*", "/a%2", "/a%zz", "/a%00b", "/?k=%0", "/?k=%00"}) {
    INFO(bad);
    CHECK(!DecodeTarget(bad, &path, &query, &error));
    CHECK(!error.empty());
  }
}

TEST_CASE("a chunked body decodes the same whatever pieces it arrives in") {
  const std::string coded =
      "5;ext=1\r\nhello\r\n"
      "1\r\n \r\n"
      "00000005\r\nworld\r\n"
      "0\r\nTrailer: x\r\n\r\n"
      "NEXT";
  for (size_t piece : {1, 2, 3, 7, 64}) {
    INFO("piece " << piece);
    ChunkedDecoder d;
    std::string body;
    size_t consumed = 0;
    auto r = FeedInPieces(coded, piece, &body, 1 << 20, &consumed, &d);
    REQUIRE(r == ChunkedDecoder::Result::kDone);
    CHECK(body == "hello world");
    CHECK(consumed == coded.size() - 4);  // "NEXT" is the next request's
  }
}

TEST_CASE("a chunked body that is malformed or too large stops with an error") {
  struct Case {
    std::string coded;
    bool too_large;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"z\r\n", false, "malformed chunk size \"z\""},
      {"\r\n", false, "malformed chunk size line"},
      {"1234567890abcdef0\r\n", false, "malformed chunk size line"},
      {"3\r\nabcd\r\n", false, "chunk data longer than its size"},
      {"ff\r\n", true, "request body larger than 16 bytes"},
      {"8\r\n12345678\r\n9\r\n", true, "larger than 16"},
      {std::string(5000, '1'), false, "too long"},
  };
  for (const Case& c : cases) {
    INFO(c.coded.substr(0, 40));
    ChunkedDecoder d;
    std::string body;
    size_t used = 0;
    REQUIRE(d.Feed(c.coded, &body, 16, &used) == ChunkedDecoder::Result::kError);
    CHECK(d.too_large() == c.too_large);
    CHECK(d.error().find(c.says) != std::string::npos);
    CHECK(body.size() <= 16);
  }
}

TEST_CASE("fuzz: damaged requests and chunked bodies give a result, never a crash or overrun") {
  std::mt19937 rng(20261127);
  const std::vector<std::string> seeds = {
      "GET /api/v1/watch?path=/kiln&since=0 HTTP/1.1\r\nHost: h\r\nAccept: "
      "text/event-stream\r\n\r\n",
      "PUT /api/v1/coord/data/x HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nabcd",
      "POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n",
  };
  const std::string alphabet = "\r\n :;%/?&=+0123456789abcdefGHT\t\x01\x7f\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, 1 + rng() % 4); break;
        case 2: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 3: s.resize(at); break;
      }
    }
    RequestHead h;
    HeadParse p = ParseRequestHead(s, &h);
    if (p.result == HeadParse::Result::kDone) {
      REQUIRE(p.consumed <= s.size());
      std::string path, error;
      std::map<std::string, std::string> query;
      if (!DecodeTarget(h.target, &path, &query, &error)) REQUIRE(!error.empty());
      if (h.chunked) {
        ChunkedDecoder d;
        std::string body;
        size_t used = 0;
        auto r = d.Feed(std::string_view(s).substr(p.consumed), &body, 64, &used);
        REQUIRE(used <= s.size() - p.consumed);
        REQUIRE(body.size() <= 64);
        if (r == ChunkedDecoder::Result::kError) REQUIRE(!d.error().empty());
      }
    } else if (p.result == HeadParse::Result::kError) {
      REQUIRE(p.status >= 400);
      REQUIRE(!p.error.empty());
    }
  }
}
