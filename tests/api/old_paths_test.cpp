// SPDX-License-Identifier: MIT
// The include paths of the flat layout keep working for one release: each
// forwards to its header's new folder (alloc/, handles/, report/, testing/).
// global_new.hpp (it replaces operator new) and gtest.hpp are included by
// tests/integration/gtest_new_test.cpp.
#include <resmon/alloc_failure.hpp>
#include <resmon/allocation_account.hpp>
#include <resmon/leak_scope.hpp>
#include <resmon/registries.hpp>
#include <resmon/report.hpp>
#include <resmon/stack.hpp>
#include <resmon/suppressions.hpp>
#include <resmon/symbolize.hpp>
#include <resmon/tracked_thread.hpp>
#include <resmon/tracker.hpp>
#include <resmon/tracking_allocator.hpp>
#include <resmon/tracking_resource.hpp>
#include <resmon/unique_dir.hpp>
#include <resmon/unique_fd.hpp>
#include <resmon/unique_file.hpp>
#include <resmon/unique_handle.hpp>
#include <resmon/unique_mapping.hpp>
#include <resmon/core/report.hpp>
#include <resmon/core/tracker.hpp>
#include <resmon/doctest.hpp>  // after the others: it may bring doctest itself

#include <vector>

TEST_CASE("old include paths: every header is reached and works") {
  RESMON_LEAK_CHECK();
  std::vector<int, resmon::tracking_allocator<int>> v;
  v.push_back(1);
  CHECK(resmon::live(resmon::kind::memory).count >= 1);
  resmon::unique_fd fd;
  CHECK(!fd);
  CHECK(resmon::pattern_matches("grow*", "grow_cache"));
}
