#include "common/json.h"

#include <fmt/format.h>

namespace kiln {

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgument(fmt::format("{}: invalid JSON at byte {}", what, e.byte));
  } catch (const Json::exception& e) {
    return InvalidArgument(fmt::format("{}: invalid JSON: {}", what, e.what()));
  }
}

Json ErrorJson(const Status& s) {
  return Json{{"error", {{"code", std::string(CodeName(s.code()))}, {"message", s.message()}}}};
}

Status StatusFromErrorJson(std::string_view body, long http_status) {
  try {
    auto j = Json::parse(body.begin(), body.end());
    const auto& e = j.at("error");
    return Status(CodeFromName(e.at("code").get<std::string>()),
                  e.at("message").get<std::string>());
  } catch (const Json::exception&) {
    std::string text(body.substr(0, 200));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    Code code = http_status == 404 ? Code::kNotFound
                : http_status == 401 ? Code::kUnauthenticated
                : http_status == 403 ? Code::kPermissionDenied
                : http_status >= 500 ? Code::kUnavailable
                                     : Code::kInvalidArgument;
    return Status(code, fmt::format("HTTP {}: {}", http_status, text.empty() ? "(no body)" : text));
  }
}

}  // namespace kiln
