#include "server/cli/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include "common/strings.h"

namespace kiln::cli {

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled) {}
ProgressBar::~ProgressBar() {
  Done();
}

bool ProgressBar::IsTerminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

void ProgressBar::Update(uint64_t bytes, uint64_t bytes_total, uint64_t files, uint64_t files_total,
                         std::string_view phase) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) &&
      (bytes_total == 0 || bytes < bytes_total))
    return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0.05 ? static_cast<double>(bytes) / secs : 0;
  std::string line = fmt::format("{} {}", label_, phase.empty() ? "" : std::string(phase));
  if (bytes_total > 0) {
    double frac = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(bytes_total));
    int width = 24, fill = static_cast<int>(frac * width);
    line += fmt::format(" [{}{}] {:3.0f}% {}/{}", std::string(static_cast<size_t>(fill), '#'),
                        std::string(static_cast<size_t>(width - fill), ' '), frac * 100,
                        HumanBytes(bytes), HumanBytes(bytes_total));
  } else {
    line += " " + HumanBytes(bytes);
  }
  if (files_total > 0)
    line += fmt::format("  {}/{} files", files, files_total);
  else if (files > 0)
    line += fmt::format("  {} files", files);
  if (rate > 0) line += fmt::format("  {}/s", HumanBytes(static_cast<uint64_t>(rate)));
  if (rate > 0 && bytes_total > bytes)
    line += "  ETA " + HumanDuration(static_cast<double>(bytes_total - bytes) / rate);
  fmt::print(stderr, "\r\033[K{}", line);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Done() {
  if (enabled_ && drawn_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace kiln::cli
