#include "agent/progress_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/log.h"
#include "common/strings.h"

namespace kiln::agent {

Result<ProgressJournal> ProgressJournal::Open(const std::string& dir) {
  KILN_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  ProgressJournal j;
  j.dir_ = dir;
  std::string path = dir + "/events.jsonl";
  auto text = ReadFile(path);
  if (text.ok()) {
    size_t good_bytes = 0, pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) break;  // torn tail: never sent, dropped
      auto parsed = ParseJson(std::string_view(*text).substr(pos, nl - pos), path);
      if (!parsed.ok()) break;
      auto e = ProgressEvent::FromJson(*parsed);
      if (!e.ok() || e->seq != j.last_seq() + 1) break;
      j.events_.push_back(std::move(*e));
      pos = nl + 1;
      good_bytes = pos;
    }
    if (good_bytes < text->size()) {
      log::Warn("agent", "progress journal: dropping a torn tail",
                {{"path", path}, {"offset", good_bytes}, {"bytes", text->size() - good_bytes}});
      if (::truncate(path.c_str(), static_cast<off_t>(good_bytes)) != 0)
        return ErrnoError("truncate " + path, errno);
    }
  } else if (text.status().code() != Code::kNotFound) {
    return text.status();
  }
  j.fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!j.fd_.valid()) return ErrnoError("open " + path, errno);
  auto acked = ReadFile(dir + "/acked");
  if (acked.ok()) j.acked_ = ParseUint(Trim(*acked)).value_or(0);
  if (j.acked_ > j.last_seq()) j.acked_ = j.last_seq();
  return j;
}

Result<uint64_t> ProgressJournal::Append(ProgressEvent e) {
  e.seq = last_seq() + 1;
  std::string line = e.ToJson().dump() + "\n";
  KILN_RETURN_IF_ERROR(WriteAll(fd_.get(), line, dir_ + "/events.jsonl"));
  if (::fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync " + dir_ + "/events.jsonl", errno);
  events_.push_back(std::move(e));
  return events_.back().seq;
}

std::vector<ProgressEvent> ProgressJournal::Pending(size_t max) const {
  std::vector<ProgressEvent> out;
  // seq n lives at index n-1.
  for (uint64_t s = acked_ + 1; s <= last_seq() && out.size() < max; ++s) out.push_back(events_[s - 1]);
  return out;
}

Status ProgressJournal::MarkAcked(uint64_t seq) {
  if (seq <= acked_) return Status::Ok();
  if (seq > last_seq())
    return InvalidArgument(fmt::format("server acknowledged event {} but only {} exist", seq, last_seq()));
  acked_ = seq;
  return WriteFileAtomic(dir_ + "/acked", fmt::format("{}\n", seq), 0600);
}

}  // namespace kiln::agent
