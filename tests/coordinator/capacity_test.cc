#include "coordinator/capacity.h"

#include <vector>

#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

// A server whose true capacity is known: every load up to `limit` passes.
CapacityProbe Limit(double limit, std::vector<double>* seen) {
  return [limit, seen](double load) -> absl::StatusOr<bool> {
    seen->push_back(load);
    return load <= limit;
  };
}

TEST(SearchCapacityTest, FindsTheExactConcurrency) {
  for (int limit : {1, 3, 8, 9, 13, 100, 1000}) {
    std::vector<double> seen;
    auto r = SearchCapacity(v1::CapacitySearch(), /*integer=*/true, Limit(limit, &seen));
    ASSERT_TRUE(r.ok());
    // Within one step of the truth: exact for small values, within 10% for large ones.
    EXPECT_LE(r->found(), limit);
    EXPECT_GE(r->found(), limit * 0.9 - 1) << limit;
    EXPECT_GT(r->first_failing(), r->found());
    EXPECT_EQ(r->probed_size(), static_cast<int>(seen.size()));
  }
}

TEST(SearchCapacityTest, OpenLoopRatesBisectToTheResolution) {
  std::vector<double> seen;
  v1::CapacitySearch search;
  search.set_start(2);
  search.set_resolution_pct(5);
  auto r = SearchCapacity(search, /*integer=*/false, Limit(37.5, &seen));
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->found(), 37.5);
  EXPECT_GE(r->found(), 37.5 * 0.95);
  EXPECT_EQ(r->unit(), "requests/s");
}

TEST(SearchCapacityTest, NothingPassesOrEverythingPasses) {
  std::vector<double> seen;
  auto none = SearchCapacity(v1::CapacitySearch(), true, Limit(0, &seen));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->found(), 0);
  EXPECT_EQ(none->first_failing(), 1);
  v1::CapacitySearch small;
  small.set_max(64);
  auto all = SearchCapacity(small, true, Limit(1e9, &seen));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->found(), 64);
  EXPECT_EQ(all->first_failing(), 0);
}

TEST(SearchCapacityTest, ReplicasNeeded) {
  std::vector<double> seen;
  v1::CapacitySearch search;
  search.set_replicas(2);
  search.set_target_streams(100);
  auto r = SearchCapacity(search, true, Limit(8, &seen));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->found(), 8);
  EXPECT_EQ(r->per_replica(), 4);
  EXPECT_EQ(r->replicas_needed(), 25);
}

TEST(SearchCapacityTest, AProbeErrorStopsTheSearch) {
  auto r = SearchCapacity(v1::CapacitySearch(), true, [](double) -> absl::StatusOr<bool> {
    return absl::UnavailableError("agent lost");
  });
  EXPECT_TRUE(absl::IsUnavailable(r.status()));
}

}  // namespace
}  // namespace ttsbench::coordinator
