// SPDX-License-Identifier: MIT
// The enabled translation unit linked into the disabled allocator test.
#include <resmon/tracking_allocator.hpp>

#include <numeric>
#include <vector>

std::size_t enabled_vector_size();
std::size_t enabled_accounted_size();
std::vector<int, resmon::tracking_allocator<int>> enabled_make(int n);
int enabled_sum_and_free(std::vector<int, resmon::tracking_allocator<int>>&& v);

static_assert(RESMON_HAS_TRACKING);

std::size_t enabled_vector_size() { return sizeof(std::vector<int, resmon::tracking_allocator<int>>); }
std::size_t enabled_accounted_size() { return sizeof(resmon::accounted_allocator<int>); }
std::vector<int, resmon::tracking_allocator<int>> enabled_make(int n) {
  std::vector<int, resmon::tracking_allocator<int>> v(std::size_t(n), 0);
  std::iota(v.begin(), v.end(), 0);
  return v;
}
int enabled_sum_and_free(std::vector<int, resmon::tracking_allocator<int>>&& v) {
  std::vector<int, resmon::tracking_allocator<int>> owned(std::move(v));
  return std::accumulate(owned.begin(), owned.end(), 0);
}
