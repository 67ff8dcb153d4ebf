// SPDX-License-Identifier: MIT
// Every public header in one translation unit, built by the consumer with
// -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast as errors: the
// headers come in through -I, so their warnings would be the user's.
#include <resmon/testing/alloc_failure.hpp>
#include <resmon/alloc/allocation_account.hpp>
#include <resmon/handles.hpp>
#include <resmon/report/leak_scope.hpp>
#include <resmon/monitor/limit.hpp>
#include <resmon/monitor/monitor.hpp>
#include <resmon/monitor/openmetrics.hpp>
#include <resmon/report/report.hpp>
#include <resmon/resmon.h>
#include <resmon/resmon.hpp>
#include <resmon/report/suppressions.hpp>
#include <resmon/handles/tracked_thread.hpp>
#include <resmon/alloc/tracking_allocator.hpp>
#include <resmon/alloc/tracking_resource.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<int, resmon::tracking_allocator<int>> v(10);
  std::printf("strict: %zu held\n", resmon::leak_scope().leaks().size() + v.size() - 10);
  return 0;
}
