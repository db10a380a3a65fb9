#pragma once
// Prometheus metrics in the text exposition format (version 0.0.4).
//
// Counters are atomics handed out once and bumped without locks; gauges are
// functions sampled at scrape time, so a module exposes its state without
// pushing updates. Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // The counter for name+labels, created on first use. The reference stays
  // valid for the registry's life.
  std::atomic<uint64_t>& Counter(const std::string& name, const std::string& help,
                                 const MetricLabels& labels = {});

  // A gauge read by calling fn at scrape time. Replaces an earlier one with
  // the same name+labels.
  void Gauge(const std::string& name, const std::string& help, const MetricLabels& labels,
             std::function<double()> fn);

  // The whole registry as Prometheus text.
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> counters;  // by label text
    std::map<std::string, std::function<double()>> gauges;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// {a="x",b="y"} with Prometheus escaping; "" for no labels.
std::string FormatLabels(const MetricLabels& labels);

}  // namespace kiln
