// SPDX-License-Identifier: MIT
// The enabled translation unit linked into the disabled allocator test: it
// checks that its containers are recorded while they hold a block, although
// the untracked translation unit instantiated the same templates first.
#include <resmon/alloc/tracking_allocator.hpp>

#include <memory_resource>
#include <vector>

#include <resmon/alloc/tracking_resource.hpp>

std::size_t enabled_vector_size();
std::size_t enabled_accounted_size();
bool enabled_vector_counted_while_held();
bool enabled_accounted_counted_while_held();
bool enabled_resource_counted_while_held();

static_assert(RESMON_HAS_TRACKING);

std::size_t enabled_vector_size() { return sizeof(std::vector<int, resmon::tracking_allocator<int>>); }
std::size_t enabled_accounted_size() { return sizeof(resmon::accounted_allocator<int>); }

bool enabled_vector_counted_while_held() {
  resmon::usage before = resmon::live(resmon::kind::memory);
  bool held = false;
  {
    std::vector<int, resmon::tracking_allocator<int>> v(16, 0);
    v.push_back(1);
    resmon::usage during = resmon::live(resmon::kind::memory);
    held = during.count == before.count + 1 && during.bytes == before.bytes + v.capacity() * sizeof(int);
  }
  resmon::usage after = resmon::live(resmon::kind::memory);
  return held && after.count == before.count && after.bytes == before.bytes;
}

bool enabled_accounted_counted_while_held() {
  resmon::allocation_account acct("mixed", {});
  std::vector<int, resmon::accounted_allocator<int>> w(16, 0, resmon::accounted_allocator<int>(acct));
  w.push_back(1);
  return acct.live().count == 1 && acct.live().bytes == w.capacity() * sizeof(int);
}

bool enabled_resource_counted_while_held() {
  resmon::tracking_resource r("mixed", std::pmr::new_delete_resource());
  resmon::usage before = resmon::live(resmon::kind::memory);
  void* p = r.allocate(64);
  bool held = resmon::live(resmon::kind::memory).count == before.count + 1 && r.account().live().count == 1;
  r.deallocate(p, 64);
  return held && resmon::live(resmon::kind::memory).count == before.count;
}
