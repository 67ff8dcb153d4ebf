// SPDX-License-Identifier: MIT
// tracking_allocator without RESMON_ENABLE: same layout, forwards only (no
// record, no budget, no injected failure); links with an enabled translation
// unit (tracking_allocator_enabled_part.cpp) that shares containers with it.
#undef RESMON_ENABLE
#define RESMON_ENABLE 0
#include <resmon/tracking_allocator.hpp>

#include <doctest/doctest.h>

#include <map>
#include <memory_resource>
#include <vector>

#include <resmon/alloc_failure.hpp>
#include <resmon/tracking_resource.hpp>

static_assert(!RESMON_HAS_TRACKING);
static_assert(std::is_empty_v<resmon::tracking_allocator<int>>);
static_assert(sizeof(std::vector<int, resmon::tracking_allocator<int>>) == sizeof(std::vector<int>));

// Defined in the enabled translation unit.
std::size_t enabled_vector_size();
std::size_t enabled_accounted_size();
std::vector<int, resmon::tracking_allocator<int>> enabled_make(int n);
int enabled_sum_and_free(std::vector<int, resmon::tracking_allocator<int>>&& v);

TEST_CASE("tracking_allocator (disabled): forwards only, records nothing") {
  resmon::usage before = resmon::total(resmon::kind::memory);
  {
    std::map<int, int, std::less<int>, resmon::tracking_allocator<std::pair<const int, int>>> m;
    for (int i = 0; i < 100; ++i) m[i] = i;
    CHECK(m.size() == 100);
  }
  CHECK(resmon::total(resmon::kind::memory).count == before.count);
}

TEST_CASE("accounted_allocator (disabled): no budget, no injected failure") {
  resmon::allocation_account acct("disabled", {.count = 1});
  std::vector<int, resmon::accounted_allocator<int>> v{resmon::accounted_allocator<int>(acct)};
  for (int i = 0; i < 100; ++i) v.push_back(i);  // would exceed the budget if enforced
  acct.fail_at(1);
  v.reserve(1000);
  CHECK(v.capacity() >= 1000);
  CHECK(acct.live().count == 0);
  resmon::tracking_resource r("disabled", std::pmr::new_delete_resource(), {.bytes = 1});
  void* p = r.allocate(100);
  r.deallocate(p, 100);
  CHECK(r.account().refused() == 0);
}

TEST_CASE("tracking_allocator (disabled): same layout as in an enabled translation unit") {
  CHECK(enabled_vector_size() == sizeof(std::vector<int, resmon::tracking_allocator<int>>));
  CHECK(enabled_accounted_size() == sizeof(resmon::accounted_allocator<int>));
  // Containers cross the boundary both ways and stay memory-safe (ASan checks).
  auto v = enabled_make(10);
  v.push_back(100);
  CHECK(enabled_sum_and_free(std::move(v)) == 145);
}

TEST_CASE("test_alloc_failures (disabled): says that it needs RESMON_ENABLE") {
  auto result = resmon::test_alloc_failures([] { std::vector<int, resmon::tracking_allocator<int>> v(10); });
  CHECK(!result.passed);
  CHECK(result.message.find("needs RESMON_ENABLE=1") != std::string::npos);
}
