#include "imager/stream_plan_cache.h"

#include <algorithm>

namespace kiln::imager {

Result<StreamPlanCache::PlanPtr> StreamPlanCache::Get(
    const Sha256Digest& base, const Sha256Digest& target, uint64_t generation,
    const std::function<Result<StreamPlan>()>& make) {
  std::shared_future<Result<PlanPtr>> made_by_other;
  std::promise<Result<PlanPtr>> promise;
  uint64_t mine = 0;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(slots_.begin(), slots_.end(),
                           [&](const Slot& s) { return s.base == base && s.target == target; });
    if (it != slots_.end() && it->generation == generation) {
      slots_.splice(slots_.begin(), slots_, it);
      made_by_other = it->plan;
    } else {
      if (it != slots_.end()) slots_.erase(it);  // made before a gc
      mine = ++made_;
      slots_.push_front({base, target, generation, mine, promise.get_future().share()});
      if (slots_.size() > capacity_) slots_.pop_back();
    }
  }
  // Planned already, or being planned by another request: wait for it.
  if (made_by_other.valid()) return made_by_other.get();

  Result<PlanPtr> result = [&]() -> Result<PlanPtr> {
    Result<StreamPlan> plan = make();
    if (!plan.ok()) return plan.status();
    return PlanPtr(std::make_shared<const StreamPlan>(std::move(*plan)));
  }();
  promise.set_value(result);
  if (!result.ok()) {  // not kept: the next request tries again
    std::lock_guard lock(mu_);
    slots_.remove_if([&](const Slot& s) { return s.id == mine; });
  }
  return result;
}

size_t StreamPlanCache::made() const {
  std::lock_guard lock(mu_);
  return made_;
}

}  // namespace kiln::imager
