#include "coordinator/capacity.h"

#include <algorithm>
#include <cmath>

namespace ttsbench::coordinator {

absl::StatusOr<v1::CapacityResult> SearchCapacity(const v1::CapacitySearch& search, bool integer,
                                                  const CapacityProbe& probe) {
  const double start = search.start() > 0 ? search.start() : 1;
  const double max = search.max() > 0 ? search.max() : 4096;
  const double resolution = (search.resolution_pct() > 0 ? search.resolution_pct() : 10) / 100;
  v1::CapacityResult r;
  r.set_unit(integer ? "concurrency" : "requests/s");
  auto run = [&](double load) -> absl::StatusOr<bool> {
    auto ok = probe(load);
    if (!ok.ok()) return ok.status();
    r.add_probed(load);
    r.add_passed(*ok);
    return *ok;
  };
  double pass = 0, fail = 0;
  // Doubling: the first failure brackets the answer.
  for (double load = start; load <= max; load *= 2) {
    if (integer) load = std::round(load);
    auto ok = run(load);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      fail = load;
      break;
    }
    pass = load;
  }
  // Bisection inside (pass, fail) until the bracket is narrow enough.
  while (fail > 0) {
    const double width = fail - pass;
    const double needed = std::max(integer ? 1.0 : 0.0, resolution * std::max(pass, 1.0));
    if (width <= needed || (integer && width <= 1)) break;
    double mid = (pass + fail) / 2;
    if (integer) mid = std::floor(mid);
    if (mid <= pass || mid >= fail) break;
    auto ok = run(mid);
    if (!ok.ok()) return ok.status();
    (*ok ? pass : fail) = mid;
  }
  r.set_found(pass);
  r.set_first_failing(fail);
  if (search.replicas() > 0 && pass > 0) {
    r.set_per_replica(pass / search.replicas());
    if (search.target_streams() > 0) {
      r.set_replicas_needed(
          static_cast<int32_t>(std::ceil(search.target_streams() / r.per_replica())));
    }
  }
  return r;
}

}  // namespace ttsbench::coordinator
