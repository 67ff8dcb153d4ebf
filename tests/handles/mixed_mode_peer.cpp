// SPDX-License-Identifier: MIT
// The tracking half of unique_handle_disabled_test.cpp: built with RESMON_ENABLE=1.
#include <resmon/handles/unique_fd.hpp>

static_assert(RESMON_HAS_TRACKING, "this translation unit tracks");

resmon::unique_handle<resmon::fd_traits, resmon::handle_recording> open_tracked_null();

resmon::unique_handle<resmon::fd_traits, resmon::handle_recording> open_tracked_null() {
  return resmon::open("/dev/null", O_RDONLY).handle;
}

void* open_tracked_factory();

void* open_tracked_factory() {
  using tracked_open = resmon::result<resmon::unique_fd> (*)(const char*, int, mode_t, resmon::call_site);
  tracked_open f = &resmon::open;
  return reinterpret_cast<void*>(f);
}
