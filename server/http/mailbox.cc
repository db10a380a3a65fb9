#include "server/http/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiln::http {

Result<std::shared_ptr<Mailbox>> Mailbox::Create() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  auto mb = std::make_shared<Mailbox>();
  mb->event_fd_ = UniqueFd(fd);
  return mb;
}

void Mailbox::Post(uint64_t conn, Kind kind) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      if (kind == Kind::kAdopt) ::close(static_cast<int>(conn));
      return;
    }
    was_empty = items_.empty();
    items_.push_back({conn, kind});
  }
  // The loop reads the eventfd before it takes the items, so a post that
  // found the list non-empty is taken with the ones before it.
  if (was_empty) {
    uint64_t one = 1;
    ssize_t n = ::write(event_fd_.get(), &one, sizeof one);
    (void)n;  // EAGAIN: the counter is already non-zero, the loop will wake
  }
}

void Mailbox::Take(std::vector<Item>* items) {
  uint64_t count;
  ssize_t n = ::read(event_fd_.get(), &count, sizeof count);
  (void)n;
  items->clear();
  std::lock_guard lock(mu_);
  items->swap(items_);
}

void Mailbox::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (const Item& item : items_)
    if (item.kind == Kind::kAdopt) ::close(static_cast<int>(item.conn));
  items_.clear();
}

}  // namespace kiln::http
