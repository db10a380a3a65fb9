#include "server/node_events.h"

#include <fmt/format.h>

#include <memory>

#include "common/log.h"
#include "server/inventory/inventory.h"

namespace kiln {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string NodeEvents::ProgressPath(const std::string& node) {
  return std::string(inventory::kNodesPath) + "/" + node + "/progress";
}

std::string NodeEvents::EventsPath(const std::string& node) {
  return std::string(inventory::kNodesPath) + "/" + node + "/events";
}

void NodeEvents::Append(const std::string& node, const std::string& run, std::vector<Json> events,
                        std::function<void(Result<Appended>)> done) {
  Attempt(node, run, std::move(events), std::move(done), 0);
}

void NodeEvents::Attempt(std::string node, std::string run, std::vector<Json> events,
                         std::function<void(Result<Appended>)> done, int attempt) {
  std::string progress_path = ProgressPath(node);
  store_.GetAsync(
      progress_path, nullptr,
      [this, node, run, events = std::move(events), done = std::move(done), attempt,
       progress_path](Result<coord::GetResult> got) mutable {
        Json progress = Json::object();
        int32_t version = -1;  // -1: no progress znode yet
        if (got.ok()) {
          auto parsed = ParseJson(got->data, progress_path);
          if (parsed.ok() && parsed->is_object()) progress = std::move(*parsed);
          version = got->stat.version;
        } else if (got.status().code() != Code::kNotFound) {
          done(got.status());
          return;
        }
        bool same_run = progress.value("run", "") == run;
        uint64_t have = same_run ? progress.value("seq", uint64_t{0}) : 0;
        uint64_t count = progress.value("count", uint64_t{0});

        std::vector<coord::Op> ops;
        if (version < 0) {
          // First report for this node: the events parent may not exist yet.
          // The node itself must: creating under a missing node fails the multi.
          ops.push_back(coord::CheckOp{std::string(inventory::kNodesPath) + "/" + node});
        }
        Json last;
        size_t added = 0;
        for (const Json& e : events) {
          uint64_t seq = e.value("seq", uint64_t{0});
          if (seq <= have) continue;  // already stored (a resend)
          if (seq != have + 1) {
            done(FailedPrecondition(fmt::format(
                "event {} of run {} leaves a gap: the server has up to {}; resend from {}", seq,
                run, have, have + 1)));
            return;
          }
          ops.push_back(coord::CreateOp{EventsPath(node) + "/e-",
                                        Json{{"run", run}, {"event", e}}.dump(), false, true});
          last = e;
          have = seq;
          ++added;
        }
        if (added == 0) {
          done(Appended{have, 0, false});
          return;
        }
        Json next = {{"run", run},
                     {"seq", have},
                     {"count", count + added},
                     {"event", last},
                     {"updated_ms", NowMs()}};
        bool needs_parent = version < 0;
        if (version < 0)
          ops.insert(ops.begin() + 1, coord::CreateOp{progress_path, next.dump()});
        else
          ops.insert(ops.begin(), coord::SetOp{progress_path, next.dump(), version});
        if (needs_parent) ops.insert(ops.begin() + 2, coord::CreateOp{EventsPath(node), ""});

        bool trim = (count + added) / 64 != count / 64 && count + added > kMaxEvents;
        store_.MultiAsync(std::move(ops),
                          [this, node, run, events, done = std::move(done), attempt, have, added,
                           same_run, trim, needs_parent](Result<coord::MultiResult> r) mutable {
                            if (r.ok()) {
                              if (trim) Trim(node);
                              done(Appended{have, added, !same_run});
                              return;
                            }
                            Code c = r.status().code();
                            bool conflict = c == Code::kBadVersion || c == Code::kAlreadyExists;
                            if (needs_parent && c == Code::kNotFound) {
                              done(NotFound("no node " + node));
                              return;
                            }
                            if (conflict && attempt < 8) {
                              // Someone wrote the progress first (a resend racing itself, another
                              // server): read again and keep only what is still new.
                              Attempt(std::move(node), std::move(run), std::move(events),
                                      std::move(done), attempt + 1);
                              return;
                            }
                            done(r.status().WithContext("storing events of node " + node));
                          });
      });
}

void NodeEvents::Trim(const std::string& node) {
  std::string parent = EventsPath(node);
  store_.ChildrenAsync(parent, nullptr, [this, parent](Result<coord::ChildrenResult> r) {
    if (!r.ok() || r->children.size() <= kMaxEvents) return;
    std::vector<coord::Op> ops;
    size_t excess = r->children.size() - kMaxEvents;
    for (size_t i = 0; i < excess; ++i)
      ops.push_back(coord::DeleteOp{parent + "/" + r->children[i]});
    store_.MultiAsync(std::move(ops), [parent](Result<coord::MultiResult> m) {
      if (!m.ok())
        log::Debug("events", "trim failed; the next one retries",
                   {{"path", parent}, {"error", m.status().ToString()}});
    });
  });
}

}  // namespace kiln
