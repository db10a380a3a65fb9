#include "agent/progress_event.h"

#include <fmt/format.h>

namespace kiln::agent {

std::string KindName(ProgressEvent::Kind k) {
  switch (k) {
    case ProgressEvent::Kind::kPhase: return "phase";
    case ProgressEvent::Kind::kProgress: return "progress";
    case ProgressEvent::Kind::kLog: return "log";
    case ProgressEvent::Kind::kResult: return "result";
  }
  return "progress";
}

Json ProgressEvent::ToJson() const {
  Json j = {{"seq", seq},   {"time_ms", time_ms}, {"kind", KindName(kind)}, {"phase", phase},
            {"step", step}, {"done", done},       {"total", total},         {"rate", rate},
            {"level", level}, {"message", message}};
  if (eta_s >= 0) j["eta_s"] = eta_s;
  if (kind == Kind::kResult) j["ok"] = ok;
  return j;
}

Result<ProgressEvent> ProgressEvent::FromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("an event must be a JSON object");
  ProgressEvent e;
  try {
    e.seq = j.at("seq").get<uint64_t>();
    e.time_ms = j.value("time_ms", int64_t{0});
    std::string kind = j.value("kind", std::string("progress"));
    if (kind == "phase") e.kind = Kind::kPhase;
    else if (kind == "progress") e.kind = Kind::kProgress;
    else if (kind == "log") e.kind = Kind::kLog;
    else if (kind == "result") e.kind = Kind::kResult;
    else return InvalidArgument(fmt::format("event {}: unknown kind \"{}\"", e.seq, kind));
    e.phase = j.value("phase", std::string());
    e.step = j.value("step", std::string());
    e.done = j.value("done", uint64_t{0});
    e.total = j.value("total", uint64_t{0});
    e.rate = j.value("rate", 0.0);
    e.eta_s = j.value("eta_s", -1.0);
    e.level = j.value("level", std::string("info"));
    e.message = j.value("message", std::string());
    e.ok = j.value("ok", true);
  } catch (const Json::exception& ex) {
    return InvalidArgument(fmt::format("bad event: {}", ex.what()));
  }
  if (e.seq == 0) return InvalidArgument("event seq must be 1 or more");
  if (e.level != "info" && e.level != "warn" && e.level != "error")
    return InvalidArgument(fmt::format("event {}: level must be info, warn or error", e.seq));
  return e;
}

}  // namespace kiln::agent
