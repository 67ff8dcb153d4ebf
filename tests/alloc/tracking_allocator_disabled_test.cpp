// SPDX-License-Identifier: MIT
// tracking_allocator without RESMON_ENABLE: same layout, forwards only (no
// record, no budget, no injected failure); links with an enabled translation
// unit (tracking_allocator_enabled_part.cpp) that instantiates the same
// containers, allocators and resource. Built at -O0 with this object linked
// first: were the two modes' inline member functions one name (an ODR
// violation), the linker would keep this file's untracked copies and the
// enabled part would hold blocks that live() does not count.
#undef RESMON_ENABLE
#define RESMON_ENABLE 0
#include <resmon/alloc/tracking_allocator.hpp>

#include <doctest/doctest.h>

#include <map>
#include <memory_resource>
#include <vector>

#include <resmon/testing/alloc_failure.hpp>
#include <resmon/alloc/tracking_resource.hpp>

static_assert(!RESMON_HAS_TRACKING);
static_assert(std::is_empty_v<resmon::tracking_allocator<int>>);
static_assert(sizeof(std::vector<int, resmon::tracking_allocator<int>>) == sizeof(std::vector<int>));

// Defined in the enabled translation unit.
std::size_t enabled_vector_size();
std::size_t enabled_accounted_size();
bool enabled_vector_counted_while_held();
bool enabled_accounted_counted_while_held();
bool enabled_resource_counted_while_held();

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
}

TEST_CASE("tracking_allocator (disabled): the enabled translation unit still tracks what it holds") {
  // The same instantiations as the enabled part, emitted here first.
  {
    std::vector<int, resmon::tracking_allocator<int>> v(16, 0);
    v.push_back(1);
    resmon::allocation_account acct("mixed", {});
    std::vector<int, resmon::accounted_allocator<int>> w(16, 0, resmon::accounted_allocator<int>(acct));
    w.push_back(1);
    resmon::tracking_resource r("mixed", std::pmr::new_delete_resource());
    void* p = r.allocate(64);
    r.deallocate(p, 64);
    CHECK(acct.live().count == 0);
  }
  CHECK(enabled_vector_counted_while_held());
  CHECK(enabled_accounted_counted_while_held());
  CHECK(enabled_resource_counted_while_held());
}

TEST_CASE("test_alloc_failures (disabled): says that it needs RESMON_ENABLE") {
  auto result = resmon::test_alloc_failures([] { std::vector<int, resmon::tracking_allocator<int>> v(10); });
  CHECK(!result.passed);
  CHECK(result.message.find("needs RESMON_ENABLE=1") != std::string::npos);
}
