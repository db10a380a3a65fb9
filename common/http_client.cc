#include "common/http_client.h"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>

#include "common/strings.h"

namespace kiln {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpReply* reply;
  const HttpClient::DataCallback* on_data;
  bool stopped_by_callback = false;
};

size_t OnBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nmemb;
  std::string_view chunk(ptr, n);
  // Error bodies are collected whole so the caller can report them.
  if (t->on_data && t->reply->status >= 200 && t->reply->status < 300) {
    if (!(*t->on_data)(chunk)) {
      t->stopped_by_callback = true;
      return 0;  // aborts the transfer
    }
    return n;
  }
  t->reply->body.append(chunk);
  return n;
}

size_t OnHeader(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nitems;
  std::string_view line(buf, n);
  if (StartsWith(line, "HTTP/")) {
    // A new response (after a redirect or 100-continue) starts over.
    t->reply->headers.clear();
    auto parts = Split(Trim(line), ' ');
    if (parts.size() >= 2) t->reply->status = static_cast<long>(ParseUint(parts[1]).value_or(0));
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->reply->headers.emplace_back(ToLower(Trim(line.substr(0, colon))),
                                   std::string(Trim(line.substr(colon + 1))));
  }
  return n;
}

}  // namespace

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

HttpClient::HttpClient(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {
  GlobalInitOnce();
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpReply> HttpClient::Do(std::string_view method, std::string_view path,
                                 std::string_view body, const HttpRequestOptions& opts) {
  return Perform(method, path, body, opts, nullptr);
}

Result<HttpReply> HttpClient::Stream(std::string_view path, const DataCallback& on_data,
                                     const HttpRequestOptions& opts) {
  return Perform("GET", path, {}, opts, &on_data);
}

Result<HttpReply> HttpClient::Perform(std::string_view method, std::string_view path,
                                      std::string_view body, const HttpRequestOptions& opts,
                                      const DataCallback* on_data) {
  auto* curl = static_cast<CURL*>(curl_);
  if (!curl) return Internal("curl_easy_init failed");
  curl_easy_reset(curl);

  std::string url = base_url_ + std::string(path);
  std::string method_s(method);
  HttpReply reply;
  Transfer transfer{&reply, on_data};

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);

  if (method_s == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method_s == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_s.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }

  curl_slist* headers = nullptr;
  std::string auth;
  if (!token_.empty()) {
    auth = "Authorization: Bearer " + token_;
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::string ct;
  if (!opts.content_type.empty()) {
    ct = "Content-Type: " + opts.content_type;
    headers = curl_slist_append(headers, ct.c_str());
  }
  // No "Expect: 100-continue" round trip for uploads.
  headers = curl_slist_append(headers, "Expect:");
  std::vector<std::string> extra;
  for (const auto& [k, v] : opts.headers) {
    extra.push_back(k + ": " + v);
    headers = curl_slist_append(headers, extra.back().c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);

  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && transfer.stopped_by_callback)) {
    std::string what = fmt::format("{} {}: {}", method_s, url, curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout(what);
    return Unavailable(what);
  }
  char* content_type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type) reply.content_type = content_type;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace kiln
